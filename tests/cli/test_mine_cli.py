"""`sage mine` argument rules that need no model."""

from sage.cli import app as cli


def test_compile_and_ray_together_are_refused_before_anything_loads(monkeypatch, capsys, sage_home):
    monkeypatch.setattr(cli, "COMMANDS", ["mine"])
    assert cli.main(["mine", "--ray", "--compile"]) == 2
    assert "--compile runs in one process" in capsys.readouterr().err
