"""The committed ``docs/features.md`` matches the registry."""

from plusultra_core.features.docs import DOC_PATH, REGENERATE, main, render


def test_feature_docs_are_up_to_date():
    assert DOC_PATH.is_file(), f"{DOC_PATH} is missing: run `{REGENERATE}`"
    assert DOC_PATH.read_text() == render(), (
        f"{DOC_PATH} is stale (features changed): regenerate it with `{REGENERATE}`")


def test_docs_command_writes_the_table(tmp_path):
    out = tmp_path / "features.md"
    assert main([str(out)]) == 0
    text = out.read_text()
    assert "| `ret_1d` | returns | 1 | `close` |" in text
    assert text == render()
