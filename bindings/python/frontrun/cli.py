"""The ``frontrun`` command line."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """\
examples:
  frontrun --preload-path                 print the LD_PRELOAD library's path
  LD_PRELOAD=$(frontrun --preload-path) pytest tests/
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frontrun",
        description="Systematic race finder for Python and the native code it calls.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preload-path", action="store_true", help="print the absolute path of libfrontrun_io.so")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from frontrun import __version__

        print(f"frontrun {__version__}")
        return 0
    if args.preload_path:
        from frontrun import preload_path

        try:
            print(preload_path())
        except FileNotFoundError as exc:
            print(f"frontrun: {exc}", file=sys.stderr)
            return 1
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
