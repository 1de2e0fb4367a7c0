"""``pytest-tee env [--json] [--sysroot DIR] [--bandwidth]``: print the detected environment.

The first thing to run in a new trust domain. ``--json`` prints exactly ``Environment.to_dict()`` (the record
stored with every result), plus a ``bandwidth`` key when ``--bandwidth`` asked for a measurement.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pytest_tee.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the Environment record as JSON")
    parser.add_argument(
        "--sysroot",
        metavar="DIR",
        default="/",
        help="read /proc, /sys, /dev facts and var/log/dmesg under DIR instead of this machine (default /)",
    )
    parser.add_argument(
        "--bandwidth",
        action="store_true",
        help="also measure sustained memory read bandwidth on this machine (takes a few seconds)",
    )


def run(args: argparse.Namespace) -> int:
    from pytest_tee.environment.detection import detect, render_text

    sysroot = Path(args.sysroot).expanduser()
    if not sysroot.is_dir():
        raise InputError(
            f"--sysroot {args.sysroot}: not an existing directory; give a directory holding captured proc/, sys/, "
            "dev/ or var/log/dmesg, or / for this machine"
        )
    if args.bandwidth and sysroot.resolve() != Path("/").resolve():
        raise InputError(f"--bandwidth measures this machine, not --sysroot {args.sysroot}; drop one of the two")
    environment = detect(sysroot)
    bandwidth = None
    if args.bandwidth:
        from pytest_tee.environment.bandwidth import measure_read_bandwidth

        bandwidth = measure_read_bandwidth()
    if args.json:
        record = environment.to_dict()
        if bandwidth is not None:
            record["bandwidth"] = bandwidth
        print(json.dumps(record, indent=2))
        return 0
    print(render_text(environment))
    if bandwidth is not None:
        print(
            f"\nMemory read bandwidth  {bandwidth['read_gbps']} GB/s median, {bandwidth['read_gbps_best']} best "
            f"({bandwidth['repetitions']} passes over {bandwidth['buffer_mib']} MiB, {bandwidth['threads']} threads)"
        )
    return 0
