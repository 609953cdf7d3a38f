"""Helpers for end-to-end tests that run the real clawback binary in a temporary folder."""

import json
import os
import pathlib
import subprocess

SOURCE_DIR = pathlib.Path(os.environ.get("CLAWBACK_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BINARY = os.environ.get("CLAWBACK_BIN", str(SOURCE_DIR / "build" / "clawback"))
SAMPLE_FEED = SOURCE_DIR / "tests" / "data" / "feed-sample.jsonl"


class Clawback:
    """A clawback installation in one folder: a settings file, a rules file and a store."""

    def __init__(self, folder, rules_text, backend="log", extra_settings=""):
        self.folder = pathlib.Path(folder)
        self.store = self.folder / "clawback.db"
        self.rules = self.folder / "rules.conf"
        self.config = self.folder / "clawback.conf"
        self.rules.write_text(rules_text)
        self.config.write_text(
            "[general]\n"
            f"store = {self.store}\n"
            f"rules = {self.rules}\n"
            f"backend = {backend}\n"
            "log_level = warning\n" + extra_settings
        )

    def run(self, *args, check=True, input_text=None, timeout=120):
        """Runs `clawback --config FILE ARGS...` and returns the completed process."""
        result = subprocess.run(
            [BINARY, "--config", str(self.config), *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"clawback {' '.join(args)} exited with {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json_lines(self, *args):
        """Runs a command with --json and returns its output as a list of objects."""
        output = self.run(*args, "--json").stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]
