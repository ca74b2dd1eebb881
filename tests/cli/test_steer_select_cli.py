"""`sage steer` and `sage select` end to end on the tiny fixtures."""

import json

import pytest

from sage.cli import app as cli


@pytest.fixture()
def run_cli(monkeypatch, tiny_model_dir, tiny_sae_dir, sage_home, capsys):
    # only the commands under test: the others are built elsewhere and may not import yet
    monkeypatch.setattr(cli, "COMMANDS", ["steer", "select"])
    subject = ["--model", str(tiny_model_dir), "--sae", str(tiny_sae_dir), "--dtype", "float32"]

    def run(*argv):
        code = cli.main([argv[0], *subject, *argv[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_select_dtc_json(run_cli):
    code, out, _ = run_cli("select", "--criterion", "dtc", "--top", "4", "--direction", "down", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n_features"] == 128 and len(data["features"]) == 4
    vals = [r["dtc"] for r in data["features"]]
    assert vals == sorted(vals)


def test_steer_side_by_side_and_json(run_cli):
    args = (
        "steer",
        "--feature",
        "3",
        "--strategy",
        "add",
        "--strength",
        "30",
        "--prompt",
        "Once upon a time",
        "--max-act",
        "1.5",
        "--max-new-tokens",
        "5",
        "--temperature",
        "0",
    )
    code, out, _ = run_cli(*args)
    assert code == 0
    assert "unsteered" in out and "steered" in out and "perplexity" in out
    code, out, _ = run_cli(*args, "--json")
    data = json.loads(out)
    assert data["steering"]["max_acts"] == [1.5]
    assert data["steered"]["text"] != data["unsteered"]["text"]


def test_steer_sweep(run_cli):
    code, out, _ = run_cli(
        "steer",
        "--feature",
        "3",
        "--feature",
        "4",
        "--strategy",
        "calibrate",
        "--sweep",
        "--strengths",
        "1,4",
        "--prompt",
        "The cat",
        "--max-act",
        "1.0",
        "--max-new-tokens",
        "3",
    )
    assert code == 0
    assert "strength" in out and "act f3" in out and "act f4" in out


def test_steer_by_concept(run_cli, tmp_path):
    res = tmp_path / "r.jsonl"
    res.write_text(
        json.dumps({"feature": {"index": 7}, "labels": ["royalty"], "description": "kings"}) + "\n"
    )
    code, out, _ = run_cli(
        "steer",
        "--concept",
        "kings",
        "--results",
        str(res),
        "--strategy",
        "clamp",
        "--strength",
        "2",
        "--max-act",
        "1",
        "--prompt",
        "Once",
        "--max-new-tokens",
        "3",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["steering"]["features"] == [7] and data["selected_by"]["concept"] == "kings"
    code, out, _ = run_cli(
        "select", "--criterion", "explanation", "--concept", "royalty", "--results", str(res)
    )
    assert code == 0 and "royalty" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (("steer", "--feature", "999", "--strength", "1", "--prompt", "x", "--max-act", "1"), "out of range"),
        (("steer", "--feature", "3", "--prompt", "x"), "--strength is required"),
        (("steer", "--strength", "1", "--prompt", "x"), "--feature"),
        (
            (
                "steer",
                "--feature",
                "3",
                "--feature",
                "4",
                "--strength",
                "1",
                "--prompt",
                "x",
                "--max-act",
                "1",
                "--max-act",
                "2",
                "--max-act",
                "3",
            ),
            "one per feature",
        ),
        (("select", "--criterion", "explanation"), "--concept"),
        (("select", "--top", "0"), "--top"),
    ],
)
def test_bad_input_exits_2(run_cli, argv, message):
    code, _, err = run_cli(*argv)
    assert code == 2
    assert message in err


def test_steer_without_max_act_needs_a_mined_store(run_cli, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("The cat sat on the mat.\n")
    code, _, err = run_cli(
        "steer", "--feature", "3", "--strength", "1", "--prompt", "x", "--corpus", str(corpus)
    )
    assert code == 2
    assert "not mined" in err and "--max-act" in err


def test_steer_measure_ids_re_measures_shifts(run_cli):
    args = ("steer", "--feature", "3", "--strategy", "amplify", "--strength", "4", "--max-act", "1.5")
    prompts = ("--prompt", "The cat", "--prompt", "A dog")
    code, out, _ = run_cli(*args, *prompts, "--measure-ids", "100,200", "--json")
    assert code == 0
    data = json.loads(out)
    assert [t["token"] for t in data["tokens"]] == [100, 200] and data["prompts"] == ["The cat", "A dog"]
    again = json.loads(run_cli(*args, *prompts, "--measure-ids", "200", "--json")[1])
    assert again["tokens"][0] == data["tokens"][1]  # a token's shift and controls do not depend on the list
    code, _, err = run_cli(*args, *prompts)
    assert code == 2 and "several only with --measure-ids" in err
    assert run_cli(*args, *prompts, "--measure-ids", "x")[0] == 2


def test_steer_concept_uses_the_output_section_and_calibrate_gates_on_the_input_side(run_cli, tmp_path):
    def expl(f, labels, promoted):
        out = {"promoted": [{"token_text": f" {w}"} for w in promoted]}
        return {"feature": {"index": f}, "labels": labels, "description": "", "output": out}

    res = tmp_path / "r.jsonl"
    lines = [expl(5, ["lexical: 'ocean'"], ["harbour"]), expl(7, ["punctuation"], ["ocean", "sea"])]
    res.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    args = ("steer", "--concept", "ocean", "--results", str(res), "--strength", "2", "--max-act", "1.0")
    gen = ("--prompt", "The", "--max-new-tokens", "2", "--json")
    data = json.loads(run_cli(*args, "--strategy", "calibrate", *gen)[1])
    # steered: the feature whose output promotes the concept; trigger: the one that fires on it
    assert data["steering"]["features"] == [7] and data["steering"]["triggers"] == [5]
    assert data["selected_by"]["matches"][0]["source"] == "output"
