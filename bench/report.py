"""Figures of one bench run: rich tables on the terminal, the same tables in docs/benchmarks.md.

Every table is a ``Section`` of text cells; targets are ``Target`` rows checked against
the figures measured in the same run. ``write_docs`` rewrites only the part of
docs/benchmarks.md between the two markers, so the hand-written explanation stays.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

BEGIN = "<!-- bench:begin (written by `make bench`; edits inside are overwritten) -->"
END = "<!-- bench:end -->"
DOCS = Path("docs/benchmarks.md")

console = Console()


@dataclass
class Section:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(tuple(cells))


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    goal: str
    met: bool
    why: str = ""


@dataclass
class Results:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_before: str = field(default_factory=lambda: load_average())
    sections: list[Section] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    summary: list[tuple[str, str, str]] = field(default_factory=list)  # figure, value, meaning
    runtime_s: float = 0.0

    def section(self, title: str, *columns: str) -> Section:
        found = Section(title, columns)
        self.sections.append(found)
        return found

    def target(self, name: str, measured: str, goal: str, met: bool, why: str = "") -> None:
        self.targets.append(Target(name, measured, goal, met, "" if met else why))

    def headline(self, figure: str, value: str, meaning: str) -> None:
        self.summary.append((figure, value, meaning))


# -- number formatting -------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def ratio(value: float) -> str:
    return f"{value:.3f}"


# -- machine -------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def memory_total() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(found.group(1)) / 1024**2:.1f} GiB" if found else "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "—"


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> list[tuple[str, str]]:
    return [
        ("CPU", f"{cpu_model()} x {os.cpu_count()} (nproc)"),
        ("memory", memory_total()),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        (
            "libraries",
            ", ".join(
                f"{name} {_version(name)}"
                for name in ("numpy", "hnswlib", "uvicorn", "fastapi", "httpx", "argon2-cffi")
            ),
        ),
    ]


# -- terminal ------------------------------------------------------------------------------


def print_section(section: Section) -> None:
    table = Table(title=section.title, title_justify="left", show_lines=False)
    for index, column in enumerate(section.columns):
        table.add_column(column, justify="left" if index == 0 else "right", overflow="fold")
    for row in section.rows:
        table.add_row(*row)
    console.print(table)
    for note in section.notes:
        console.print(f"  [dim]{note}[/]")


def print_summary(results: Results) -> None:
    table = Table(title="Summary", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("meaning", overflow="fold")
    for figure, value, meaning in results.summary:
        table.add_row(figure, value, meaning)
    console.print(table)
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "measured", "goal", "met", "why (when missed)"):
        targets.add_column(column, overflow="fold")
    for item in results.targets:
        mark = "[green]met[/]" if item.met else "[red]missed[/]"
        targets.add_row(item.name, item.measured, item.goal, mark, item.why)
    console.print(targets)


# -- docs/benchmarks.md --------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    align = ["---"] + ["---:"] * (len(columns) - 1)
    lines.append("|" + "|".join(align) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def generated_markdown(results: Results) -> str:
    when = results.started.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "",
        f"### Run of {when} ({results.runtime_s / 60:.1f} min)",
        "",
    ]
    lines += _markdown_table(
        ("machine", ""),
        [*machine(), ("load average (1/5/15 min) at start", results.load_before)],
    )
    lines += ["", "#### Summary", ""]
    lines += _markdown_table(("figure", "value", "meaning"), results.summary)
    lines += ["", "#### Targets", ""]
    lines += _markdown_table(
        ("target", "measured", "goal", "met", "why (when missed)"),
        [
            (t.name, t.measured, t.goal, "**met**" if t.met else "**missed**", t.why)
            for t in results.targets
        ],
    )
    for section in results.sections:
        lines += ["", f"#### {section.title}", ""]
        lines += _markdown_table(section.columns, section.rows)
        if section.notes:
            lines.append("")
            lines += [f"- {note}" for note in section.notes]
    lines += ["", END]
    return "\n".join(lines) + "\n"


_SKELETON = """# Benchmarks

Rerun with `make bench` (or `.venv/bin/python -m bench`). The figures below are
rewritten by every run.

{generated}"""


def write_docs(results: Results, path: Path = DOCS) -> Path:
    generated = generated_markdown(results)
    if path.exists():
        text = path.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start != -1 and end != -1:
            text = text[:start] + generated.rstrip("\n") + text[end + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + generated
    else:
        text = _SKELETON.format(generated=generated)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
