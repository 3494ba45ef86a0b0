#!/bin/sh
# The guest stops answering: take its only network interface down, then wait.
# The kernel keeps running (console quiet), but nothing reaches sshd any more,
# so the harness's liveness ping over ssh gets no reply.
iface=$(ip -o route show default | sed -n 's/.* dev \([^ ]*\).*/\1/p')
echo "net-down: taking ${iface:=eth0} down"
ip link set "$iface" down || exit 2
sleep 3600
