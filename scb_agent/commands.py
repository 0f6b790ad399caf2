"""Small commands that only read files: fingerprint."""

from scb_core.authority_files import load_root
from scb_core.ca import fingerprint
from scb_core.errors import ConfigError
from scb_core.paths import Paths


def run_fingerprint(args, paths: Paths) -> int:
    try:
        root = load_root(paths.ca_dir)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no CA in {paths.ca_dir}: run `scb-agent init` first"
        ) from exc
    print(fingerprint(root))
    return 0
