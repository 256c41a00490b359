"""Without any image, Im2Vec learns words as well as gensim's Word2Vec on the same corpus."""

import gzip
import os
import re

import pytest
from gensim.models import Word2Vec
from gensim.test.utils import datapath

from gensim_im2vec import Im2Vec

WORDNET = "/usr/share/dictd/wn.dict.dz"  # Debian package dict-wn (installed by `make system-deps`)


@pytest.fixture(scope="module")
def wordnet_sentences():
    if not os.path.exists(WORDNET):
        pytest.skip(f"{WORDNET} is missing: install the Debian package dict-wn (make system-deps)")
    token = re.compile(r"[a-z]+")
    sentences, n = [], 0
    with gzip.open(WORDNET, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            tokens = token.findall(line.lower())
            if len(tokens) > 2:
                sentences.append(tokens)
                n += len(tokens)
                if n >= 2_000_000:
                    break
    return sentences


@pytest.mark.slow
def test_wordsim353_matches_gensim_word2vec(wordnet_sentences):
    # one model's WordSim353 moves with the seed and the 2 workers' timing: a single pair once differed
    # by 0.032 (ours 0.331, gensim 0.299; CI, 2026-12-02; here seeds 1-3 gave gensim 0.331-0.340, Im2Vec
    # 0.333-0.339), so the means over three seeds are compared
    def wordsim(cls, seed):
        model = cls(wordnet_sentences, vector_size=100, sg=0, min_count=5, epochs=5, workers=2, seed=seed)
        return model.wv.evaluate_word_pairs(datapath("wordsim353.tsv"))[1][0]

    ref = [wordsim(Word2Vec, seed) for seed in (1, 2, 3)]
    ours = [wordsim(Im2Vec, seed) for seed in (1, 2, 3)]
    print(f"WordSim353 over seeds 1-3: gensim {ref}, Im2Vec {ours}")
    ws_ref, ws_ours = sum(ref) / 3, sum(ours) / 3
    assert ws_ref > 0.25  # the corpus is big enough for the comparison to mean something
    assert abs(ws_ours - ws_ref) <= 0.03, (ref, ours)
