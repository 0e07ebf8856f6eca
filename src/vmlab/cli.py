"""The vmlab command (placeholder until the CLI lands)."""


def main(argv=None) -> int:
    print("vmlab")
    return 0
