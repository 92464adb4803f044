"""The `lottery` command: info | run | report | ui | sweep | resume. Bad input: one line, exit 2."""
import argparse
import sys

from lottery_core.errors import LotteryError


def _info(args: argparse.Namespace) -> None:
    from pipelines.info import describe

    options = {"shortcut": args.shortcut} if args.shortcut else {}
    print(describe(args.model, num_classes=args.num_classes,
                   min_blocks_per_stage=args.min_blocks_per_stage, **options))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lottery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", help="blocks, removable blocks, MACs, params, memory of a model")
    info.add_argument("model", help="a registered model name, e.g. resnet56")
    info.add_argument("--num-classes", type=int, default=10)
    info.add_argument("--shortcut", choices=["A", "B", "conv"], help="CIFAR ResNet shortcut variant")
    info.add_argument("--min-blocks-per-stage", type=int, default=2)
    info.set_defaults(handler=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except LotteryError as err:
        print(f"lottery {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lottery {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
