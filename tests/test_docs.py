"""The README is a front page that links out: every relative link of README and docs resolves to a
file, and the README's table of config groups names every shipped option of every group."""

import re
from pathlib import Path

import pytest
from helpers.configs import CONF

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    """Targets of markdown links outside code blocks that are neither URLs nor in-page anchors."""
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z]+:|^#", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file(page):
    missing = [t for t in relative_links(page) if not (page.parent / t.split("#", 1)[0]).exists()]
    assert missing == [], f"{page.name} links to files that do not exist: {missing}"


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](page.md) [gone](nowhere.md#x) [web](https://example.org) `[code](x.md)`\n```\n[no](y.md)\n```\n"
    )
    assert relative_links(page) == ["page.md", "nowhere.md#x"]
    assert not (tmp_path / "nowhere.md").exists()


def groups() -> dict[str, list[str]]:
    """Every shipped group (hydra/launcher included) and its options."""
    conf = Path(CONF)
    out = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in conf.iterdir() if g.is_dir() and g.name != "hydra"}
    out["hydra/launcher"] = sorted(p.stem for p in (conf / "hydra" / "launcher").glob("*.yaml"))
    return {g: o for g, o in out.items() if o}


def test_the_readme_table_names_every_option_of_every_group():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("`")] = {re.sub(r"\s*\(.*\)", "", o).strip() for o in cells[1].split(",")}
    shipped = groups()
    assert set(shipped) <= set(rows), f"groups missing from the README's table: {set(shipped) - set(rows)}"
    for group, options in shipped.items():
        assert set(options) <= rows[group], (
            f"{group}: options missing from the README's table: {set(options) - rows[group]}"
        )
        assert rows[group] <= set(options), (
            f"{group}: the README's table names options that do not exist: {rows[group] - set(options)}"
        )
