"""kharness: build, boot and judge Linux kernels for iomap zero-range races."""
