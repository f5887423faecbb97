"""The README's two commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    lines = (ROOT / "README.md").read_text().splitlines()
    fence = lines.index("```bash")
    install_demo, install_test = lines[fence + 1], lines[fence + 2]
    assert lines[fence + 3] == "```"
    assert install_demo.endswith("napari-spectral-seg demo")
    assert "pytest" in install_test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_test in ci


def test_readme_parameter_table_is_the_one_built_from_segmentation_params():
    import runpy

    table = runpy.run_path(str(ROOT / "docs" / "parameter_table.py"))
    assert table["readme_table"]((ROOT / "README.md").read_text()) == table["parameter_table"]()
