import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tests.fixtures import build_model

    out = tmp_path_factory.mktemp("tiny_llama")
    build_model(out)
    return out


@pytest.fixture(scope="session")
def tiny_sae_dir(tmp_path_factory):
    from tests.fixtures import build_sae

    out = tmp_path_factory.mktemp("tiny_sae")
    build_sae(out)
    return out


@pytest.fixture(scope="session")
def tiny_subject(tiny_model_dir, tiny_sae_dir):
    from sage.model.subject import load_subject
    from tests.fixtures import TEST_DEVICE

    return load_subject(str(tiny_model_dir), str(tiny_sae_dir), dtype="float32", device=TEST_DEVICE)


@pytest.fixture()
def sage_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGE_HOME", str(tmp_path / "sage_home"))
    return tmp_path / "sage_home"


@pytest.fixture(autouse=True)
def _no_wordnet_in_unit_tests(request, monkeypatch):
    """Unit tests run the same whether or not this machine has fetched WordNet: the offline explainer
    sees none (tests/llm/test_offline_concepts.py gives it a hand-made taxonomy; the integration tests
    use the real one)."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setattr("sage.lexicon.wordnet.installed", lambda: False)


@pytest.fixture(autouse=True)
def _forget_output_forms():
    """What the backend learned about a scripted server's structured-output form stays with the test:
    ports are reused, and a later server on the same port may answer differently."""
    from sage.llm import output_forms

    output_forms.forget()
    yield
    output_forms.forget()
