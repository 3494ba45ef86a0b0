"""fstests in the guest, as a suite: built into the image, ./check run per variant through the
shared job lifecycle, its results merged with the console findings of each test's window.

    config.py   the `fstests:` config section, selectors (generic/363, "-g zero"), local.config
    plan.py     selectors x variants x iterations -> Jobs, one per fstests test; expunges
    source.py   a local tree or git URL + ref (keyed by content), and the image it is built into
    output.py   fstests' own output read back (pure): result.xml, check's stdout, check.time,
                the `run fstests TEST at ...` lines that split the console into per-test windows
    pull.py     SFTP pulls of results/SECTION, per-test files, check.time history
    suite.py    FstestsSuite: prepare the image, run ./check, judge each test

When fstests is unavailable (no source configured, clone failed, build broke) every
fstests job is an `error` whose message names the config key to set; the rest of the
run goes on.
"""
from .config import (FstestsConfig, FstestsExpunge, FstestsTimeout, check_config, fstests_config, is_selector,
                     is_test_name, parse_selector, render_local_config, section_name)
from .output import (CaseResult, check_output_of, failure_detail, findings_in, format_check_time,
                     judge_reported, judge_stopped, parse_check_output, parse_check_time, parse_xunit, reported, test_starts, watchdog_for, windows,
                     _parse_xunit_tolerant)
from .plan import FS_DIRS, FstestsTest, expand, expunged, plan, test_dirs, test_groups
from .pull import ConsoleTail, history_file, load_history, save_history
from .source import (BUILD_DEPS, ENV_SOURCE, GUEST_FSTESTS, RUNTIME_DEPS, SourceTree, Unavailable, build_image,
                     image_extra, image_meta, plan_source, resolve_source, _planned, _resolved)
from .suite import FstestsSuite, Prepared

__all__ = [
    "FstestsConfig", "FstestsExpunge", "FstestsTimeout", "check_config", "fstests_config", "is_selector",
    "is_test_name", "parse_selector", "render_local_config", "section_name",
    "CaseResult", "check_output_of", "failure_detail", "findings_in", "format_check_time", "parse_check_output",
    "parse_check_time", "parse_xunit", "reported", "judge_reported", "judge_stopped", "test_starts", "watchdog_for", "windows", "_parse_xunit_tolerant",
    "FS_DIRS", "FstestsTest", "expand", "expunged", "plan", "test_dirs", "test_groups",
    "ConsoleTail", "history_file", "load_history", "save_history",
    "BUILD_DEPS", "ENV_SOURCE", "GUEST_FSTESTS", "RUNTIME_DEPS", "SourceTree", "Unavailable", "build_image",
    "image_extra", "image_meta", "plan_source", "resolve_source", "_planned", "_resolved", "FstestsSuite", "Prepared",
]
