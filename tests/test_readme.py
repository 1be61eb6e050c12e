"""The README's two commands are what CI runs, and every flag is documented there."""

import re
from pathlib import Path

from ganclip.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_install_and_test_commands():
    install, test = readme_commands()[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    install_part = install.split(" && .venv/bin/ganclip render")[0]
    assert install_part in ci
    assert test in ci
    assert "audioFiles/vibe_ace.ogg" in install and (ROOT / "audioFiles" / "vibe_ace.ogg").is_file()


def test_every_render_flag_is_in_the_readme():
    text = (ROOT / "README.md").read_text()
    render = build_parser()._subparsers._group_actions[0].choices["render"]
    for action in render._actions:
        for flag in action.option_strings:
            if flag != "-h" and flag != "--help":
                assert f"`{flag}" in text or f" {flag}" in text, flag
