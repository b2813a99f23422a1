"""Article features: one TF-IDF space per field, field weights, and an LSA latent part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from training.plain_vectorizer import TagAnalyzer, PlainVectorizer

#: The joint space over all text fields joined (a title word can match a body word).
ALL_TEXT = "all_text"
__all__ = ["ALL_TEXT", "DEFAULT_FIELD_WEIGHTS", "ArticleVectorizer", "TagAnalyzer"]
#: Field weights used when ``field_weights`` does not name a field; other fields weigh 0.
#: Chosen on the Reuters validation split (docs/model-selection.md).
DEFAULT_FIELD_WEIGHTS: dict[str, float] = {ALL_TEXT: 1.0, "title": 0.5, "tags": 0.05}


class ArticleVectorizer(TransformerMixin, BaseEstimator):
    """Per-field TF-IDF blended with an LSA space, as one dot-product vector per article.

    The text fields joined (``"all_text"``), each text field, and the tags can each get a
    TF-IDF space (tags are whole tokens); a space with weight 0 is left out. Every
    field block is L2-normalised and multiplied by its weight; the blocks are stacked and
    normalised into ``x``. LSA (TruncatedSVD on ``x``) gives ``z``, also normalised. An
    article is the pair ``(sqrt(1 - latent_weight) * x, sqrt(latent_weight) * z)``, so the
    dot product of two articles is ``(1 - w) cos(x, x') + w cos(z, z')``.

    Parameters
    ----------
    text_fields : tuple of str
        Names of the text fields in each record.
    tag_field : str
        Name of the tag list in each record.
    field_weights : dict or None
        Weight per space: ``"all_text"`` (all text fields joined), each text field, and
        ``tag_field``; missing names use :data:`DEFAULT_FIELD_WEIGHTS`, then 0.
    ignore_tags : tuple of str
        Tags that never count as a similarity signal.
    stop_words : str, list or None
        Passed to each text field's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`.
    token_pattern : str
        Regular expression of a token in the text fields.
    min_df, max_df : int or float
        Document frequency bounds of the text fields.
    sublinear_tf : bool
        Use ``1 + log(tf)``.
    n_components : int
        LSA dimensions (clamped below the vocabulary and corpus size); 0 disables LSA.
    latent_weight : float
        Weight ``w`` of the LSA cosine in the blend, in [0, 1].
    svd_n_iter : int
        Power iterations of the randomized SVD.
    random_state : int
        Seed of the randomized SVD.

    Examples
    --------
    >>> docs = [{"title": "Oil prices rise", "body": "crude oil prices rose", "tags": ["energy"]},
    ...         {"title": "Crude oil falls", "body": "oil prices fell sharply", "tags": ["energy"]},
    ...         {"title": "Election results", "body": "votes were counted", "tags": ["politics"]}]
    >>> vec = ArticleVectorizer(min_df=1, n_components=2).fit(docs)
    >>> sparse, dense = vec.transform(docs)
    >>> sims = (sparse @ sparse.T).toarray() + dense @ dense.T
    >>> bool(sims[0, 1] > sims[0, 2])
    True
    """

    def __init__(
        self,
        text_fields: tuple[str, ...] = ("title", "body"),
        tag_field: str = "tags",
        field_weights: dict[str, float] | None = None,
        ignore_tags: tuple[str, ...] = (),
        stop_words: str | list[str] | None = "english",
        token_pattern: str = r"(?u)\b\w\w+\b",
        min_df: int | float = 2,
        max_df: int | float = 1.0,
        sublinear_tf: bool = True,
        n_components: int = 100,
        latent_weight: float = 0.65,
        svd_n_iter: int = 2,
        random_state: int = 0,
    ) -> None:
        self.text_fields = text_fields
        self.tag_field = tag_field
        self.field_weights = field_weights
        self.ignore_tags = ignore_tags
        self.stop_words = stop_words
        self.token_pattern = token_pattern
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.n_components = n_components
        self.latent_weight = latent_weight
        self.svd_n_iter = svd_n_iter
        self.random_state = random_state

    # -- helpers -----------------------------------------------------------------
    def _weight(self, field: str) -> float:
        weights = self.field_weights or {}
        return float(weights.get(field, DEFAULT_FIELD_WEIGHTS.get(field, 0.0)))

    def _make_field_vectorizer(self, field: str) -> TfidfVectorizer:
        if field == self.tag_field:
            return TfidfVectorizer(
                analyzer=TagAnalyzer(self.ignore_tags), sublinear_tf=self.sublinear_tf,
                dtype=np.float32,
            )
        return TfidfVectorizer(
            stop_words=self.stop_words, token_pattern=self.token_pattern, min_df=self.min_df,
            max_df=self.max_df, sublinear_tf=self.sublinear_tf, dtype=np.float32,
        )

    def _fields(self) -> list[str]:
        return [ALL_TEXT, *self.text_fields, self.tag_field]

    def _column(self, records: Sequence[Mapping[str, Any]], field: str, is_tags: bool) -> list[Any]:
        if is_tags:
            return [r.get(field) or [] for r in records]
        if field == ALL_TEXT:
            return ["\n".join(r.get(f) or "" for f in self.text_fields) for r in records]
        return [r.get(field) or "" for r in records]

    def _validate(self) -> None:
        if not 0.0 <= float(self.latent_weight) <= 1.0:
            raise ValueError(f"latent_weight must be in [0, 1], got {self.latent_weight!r}")
        if int(self.n_components) < 0:
            raise ValueError(f"n_components must be >= 0, got {self.n_components!r}")
        for field in self._fields():
            if self._weight(field) < 0:
                raise ValueError(f"field weight of {field!r} must be >= 0")

    # -- estimator API -----------------------------------------------------------
    def _fit_stack(self, records: Sequence[Mapping[str, Any]]) -> sp.csr_matrix:
        """Fit every field space and the SVD; return the stacked, normalised TF-IDF rows."""
        self._validate()
        self._plain = None
        self.field_vectorizers_: dict[str, TfidfVectorizer] = {}
        blocks = []
        for field in self._fields():
            if self._weight(field) == 0:
                continue
            vec = self._make_field_vectorizer(field)
            try:
                tfidf = vec.fit_transform(self._column(records, field, field == self.tag_field))
            except ValueError:  # empty vocabulary: the field carries no signal here
                continue
            vec.stop_words_ = None  # terms cut by min_df/max_df: only bloats the pickle
            self.field_vectorizers_[field] = vec
            blocks.append(normalize(tfidf) * np.float32(self._weight(field)))
        if blocks:
            x = normalize(sp.hstack(blocks, format="csr", dtype=np.float32))
        else:
            x = sp.csr_matrix((len(records), 0), dtype=np.float32)
        self.n_features_ = x.shape[1]
        dims = min(int(self.n_components), x.shape[1] - 1, x.shape[0] - 1)
        self.svd_ = None
        if dims >= 1 and self.latent_weight > 0:
            self.svd_ = TruncatedSVD(
                n_components=dims, n_iter=self.svd_n_iter, random_state=self.random_state
            ).fit(x)
            # transform multiplies by components_.T; Fortran order makes that C-contiguous, so
            # scipy does not copy the whole basis for every draft (same values, same vectors).
            self.svd_.components_ = np.asfortranarray(self.svd_.components_)
        self.n_components_ = dims if self.svd_ is not None else 0
        return x

    def fit(self, records: Sequence[Mapping[str, Any]], y: Any = None) -> ArticleVectorizer:
        """Learn the vocabularies, IDF weights and the LSA basis.

        Parameters
        ----------
        records : sequence of mappings
            Each maps the text fields to strings and ``tag_field`` to a list of tags.
        y : ignored

        Returns
        -------
        ArticleVectorizer
            The fitted estimator.
        """
        self._fit_stack(list(records))
        return self

    def transform(self, records: Sequence[Mapping[str, Any]]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Vectorise records into the model's (sparse, dense) pair.

        Parameters
        ----------
        records : sequence of mappings
            As for :meth:`fit`; unseen words are ignored.

        Returns
        -------
        sparse : scipy.sparse.csr_matrix of float32, shape (n, n_features_)
            TF-IDF part scaled by ``sqrt(1 - latent_weight)``.
        dense : numpy.ndarray of float32, shape (n, n_components_)
            LSA part scaled by ``sqrt(latent_weight)``.
        """
        check_is_fitted(self, "field_vectorizers_")
        indptr, indices, data, dense = self.plain().transform_arrays(records)
        sparse = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, self.n_features_))
        return sparse, dense

    def transform_sklearn(self, records: Sequence[Mapping[str, Any]]) -> tuple[sp.csr_matrix, np.ndarray]:
        """The transform computed by scikit-learn and scipy: the reference of the plain vectorizer.

        Same result as :meth:`transform`, bit for bit (tests/test_plain_vectorizer.py), at
        scikit-learn's per-call cost (benchmarks/transform_bench.py).

        Parameters
        ----------
        records : sequence of mappings

        Returns
        -------
        sparse : scipy.sparse.csr_matrix of float32
        dense : numpy.ndarray of float32
        """
        check_is_fitted(self, "field_vectorizers_")
        records = list(records)
        # our own fitted parts: scikit-learn's per-call validation skipped, as the service did
        with config_context(assume_finite=True, skip_parameter_validation=True):
            blocks = []
            for field, fv in self.field_vectorizers_.items():
                col = self._column(records, field, field == self.tag_field)
                blocks.append(normalize(fv.transform(col)) * np.float32(self._weight(field)))
            if not blocks:
                x = sp.csr_matrix((len(records), 0), dtype=np.float32)
            else:
                x = normalize(sp.hstack(blocks, format="csr", dtype=np.float32))
            return self._project(x)

    def plain(self) -> PlainVectorizer:
        """This fitted vectorizer as plain data (built once, not pickled).

        Its transform repeats scikit-learn's arithmetic operation by operation (the same
        float32 bits as :meth:`fit_transform`) without scikit-learn's per-call overhead, which
        costs more than the arithmetic for one draft (POST /related).

        Returns
        -------
        PlainVectorizer
        """
        check_is_fitted(self, "field_vectorizers_")
        if getattr(self, "_plain", None) is None:
            self._plain = PlainVectorizer.from_estimator(self)
        return self._plain

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_plain", None)
        return state

    def _project(self, x: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
        """Split stacked TF-IDF rows into the scaled (sparse, dense) pair."""
        x = x.tocsr()
        x.sort_indices()  # one summation order, so fit_transform == transform bit for bit
        if self.svd_ is None:
            dense = np.zeros((x.shape[0], 0), dtype=np.float32)
            sparse_scale = 1.0
        else:
            dense = normalize(self.svd_.transform(x).astype(np.float32, copy=False))
            dense *= np.float32(np.sqrt(self.latent_weight))
            sparse_scale = float(np.sqrt(1.0 - self.latent_weight))
        sparse = (x * np.float32(sparse_scale)).tocsr().astype(np.float32, copy=False)
        sparse.sort_indices()
        return sparse, np.ascontiguousarray(dense, dtype=np.float32)

    def fit_transform(self, records: Sequence[Mapping[str, Any]], y: Any = None, **_: Any):
        """Fit, then transform the same records (see :meth:`transform`)."""
        return self._project(self._fit_stack(list(records)))

    def feature_names(self) -> np.ndarray:
        """Names of the sparse columns, prefixed by their field (``"body:oil"``).

        Returns
        -------
        numpy.ndarray of str
        """
        check_is_fitted(self, "field_vectorizers_")
        names = [
            f"{field}:{name}"
            for field, vec in self.field_vectorizers_.items()
            for name in vec.get_feature_names_out()
        ]
        return np.asarray(names, dtype=str)
