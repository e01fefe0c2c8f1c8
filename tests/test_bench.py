"""The bench runs from a fresh clone: everything bench/peers.sh installs from is inside the
repository; and its report gives the load average from before the run, not after it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import report, targets

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def test_the_peers_pins_are_inside_the_repository() -> None:
    script = (BENCH / "peers.sh").read_text()
    files = re.findall(r"\$HERE/([\w./-]+)", script)
    assert "peers/portkey-package.json" in files
    for relative in files:
        path = (BENCH / relative).resolve()
        assert path.is_relative_to(ROOT), f"bench/peers.sh reads {relative}, outside the repository"
    assert (BENCH / "peers" / "portkey-package.json").is_file()
    assert "../shared" not in script + (BENCH / "README.md").read_text()


def test_the_load_average_is_read_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run stops where its upstream would start: by then the load must have been read."""
    seen: list[str] = []

    def load_average() -> str:
        seen.append("load average")
        return "0.72"

    def start_upstream(out: Path) -> None:
        seen.append("upstream")
        raise RuntimeError("the run would start here")

    monkeypatch.setattr(bench_main.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(report, "checked_out", lambda: "abc1234")
    monkeypatch.setattr(report, "load_average", load_average)
    monkeypatch.setattr(targets, "start_upstream", start_upstream)
    monkeypatch.setattr(targets, "HERE", tmp_path)
    with pytest.raises(RuntimeError, match="would start here"):
        bench_main.main(["--quick"])
    assert seen == ["load average", "upstream"]


def test_the_report_names_the_load_average_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(report, "wrk_version", lambda: "4.2.0")  # wrk need not be installed here
    section = report.record("", "quick", {}, 64, [], full=False, load_before="0.72", commit="abc1234")
    assert "load average before the run 0.72." in section
    assert float(report.load_average()) >= 0
