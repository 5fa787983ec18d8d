"""The README's table of which test proves which guarantee names tests that exist, so it cannot drift from them."""

import re

from reliability_corpus import HERE, ROOT


def named_tests() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Which test proves what", 1)[1].split("\n## ", 1)[0]
    found, current = [], None
    for path, name in re.findall(r"`((?:[\w/]+\.py)?)::(\w+)`", table):
        current = path or current  # `::name` is another test of the file named last
        found.append((current, name))
    return found


def test_every_test_the_readme_names_exists():
    tests = named_tests()
    assert len(tests) > 20
    missing = [f"{path}::{name}" for path, name in tests
               if not re.search(rf"^def {name}\(", ((ROOT / path) if "/" in path else (HERE / path)).read_text(),
                                re.MULTILINE)]
    assert missing == []
