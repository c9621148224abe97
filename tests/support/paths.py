"""Where the files the tests read live: all inside the repository, nothing beside it."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPOSITORY / "sample.toml"
HOOK0_CONTRACT = REPOSITORY / "tests" / "contracts" / "hook0"
