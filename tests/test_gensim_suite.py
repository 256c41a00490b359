"""gensim's own Word2Vec test suite, run with Im2Vec in place of Word2Vec (issue 13).

gensim ships its tests in the installed package (``gensim/test/test_word2vec.py`` and its
``test_data``). Each of its Word2Vec test classes is run here as it is, with the name
``word2vec.Word2Vec`` in that module pointing at :class:`~gensim_im2vec.Im2Vec` for the duration
of the class: every model the suite builds, trains, saves, loads and queries is an Im2Vec.
pytest lists each of gensim's tests under the classes below.
"""

import functools
import types

import pytest
from gensim.models import word2vec

from gensim_im2vec import Im2Vec

gensim_suite = pytest.importorskip(
    "gensim.test.test_word2vec", reason="gensim's test suite needs testfixtures (pip install testfixtures)")

pytestmark = pytest.mark.slow

# gensim's word2vec module, but for its Word2Vec
WORD2VEC_AS_IM2VEC = types.ModuleType("word2vec_as_im2vec")
WORD2VEC_AS_IM2VEC.__dict__.update(vars(word2vec))
WORD2VEC_AS_IM2VEC.Word2Vec = Im2Vec

# gensim's tests that load a plain Word2Vec file (old pickles, 3.8.0) with Word2Vec.load, or
# expect AttributeError for a KeyedVectors file: Im2Vec.load refuses a plain Word2Vec and names
# Im2Vec.from_word2vec instead (issue 12), and says ValueError for a file that is no model.
LOAD_DIFFERS = {
    "test_load_old_model": TypeError,
    "test_load_old_model_separates": TypeError,
    "test_load_old_models_1_x": TypeError,
    "test_load_old_models_2_x": TypeError,
    "test_load_old_models_3_x": TypeError,
    "test_persistence_backwards_compatible": TypeError,
    "test_persistence_word2vec_format_combination_with_standard_persistence": ValueError,
}


class _AsIm2Vec:
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._word2vec = gensim_suite.word2vec
        gensim_suite.word2vec = WORD2VEC_AS_IM2VEC

    @classmethod
    def tearDownClass(cls):
        gensim_suite.word2vec = cls._word2vec
        super().tearDownClass()

    def test_the_suite_builds_im2vec(self):
        model = gensim_suite.word2vec.Word2Vec(gensim_suite.sentences, min_count=1, vector_size=8)
        assert type(model) is Im2Vec


def _expected_to_fail(base, name, raises):
    method = getattr(base, name)

    @functools.wraps(method)
    def test(self):
        return method(self)

    reason = "Im2Vec.load refuses a plain Word2Vec file (issue 12): use Im2Vec.from_word2vec"
    return pytest.mark.xfail(strict=True, raises=raises, reason=reason)(test)


class TestWord2VecModelAsIm2Vec(_AsIm2Vec, gensim_suite.TestWord2VecModel):
    pass


for _name, _raises in LOAD_DIFFERS.items():
    setattr(TestWord2VecModelAsIm2Vec, _name, _expected_to_fail(gensim_suite.TestWord2VecModel, _name, _raises))


class TestWMDAsIm2Vec(_AsIm2Vec, gensim_suite.TestWMD):
    pass
