"""The fitted vectorizer as plain data: vectorise articles with numpy alone, float for float.

:class:`PlainVectorizer` holds what an :class:`~training.features.ArticleVectorizer` learned
(vocabularies, IDF weights, field weights, the LSA basis) as a JSON file and two ``.npy``
arrays, and repeats its arithmetic (scikit-learn's tokenizer, TF-IDF, L2 normalisation and
scipy's sparse-dense product) operation by operation, so it gives the same float32 bits
without importing scikit-learn or scipy: a draft in milliseconds, and `related update`
without the second of imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Files a version stores the plain vectorizer in (docs/model-format.md).
PARAMS_FILE = "vectorizer.json"
IDF_STEM = "vectorizer_idf"
COMPONENTS_STEM = "vectorizer_components"
#: The joint space over all text fields joined.
ALL_TEXT = "all_text"
_EPS32 = 10 * np.finfo(np.float32).eps


class TagAnalyzer:
    """Turn a list of tags into whole, case-folded tokens, dropping ignored ones.

    Parameters
    ----------
    ignore : Iterable[str]
        Tags that never count as a similarity signal (compared case-folded).
    """

    def __init__(self, ignore: Iterable[str] = ()) -> None:
        self.ignore = frozenset(t.strip().casefold() for t in ignore)

    def __call__(self, tags: Any) -> list[str]:
        if not tags:
            return []
        if isinstance(tags, str):
            tags = [tags]
        out = []
        for tag in tags:
            token = " ".join(str(tag).split()).casefold()
            if token and token not in self.ignore:
                out.append(token)
        return out


def _csr_normalize(data: np.ndarray, indptr: np.ndarray, rows_per_block: int = 1024) -> None:
    """L2-normalise CSR rows in place as scikit-learn's ``inplace_csr_row_normalize_l2``.

    Squares in float32, summed in order in float64, each value divided in float64; a row
    summing to 0 is left as it is.
    """
    for a in range(0, len(indptr) - 1, rows_per_block):
        ptr = indptr[a:a + rows_per_block + 1]
        lo, hi = int(ptr[0]), int(ptr[-1])
        if hi == lo:
            continue
        part = data[lo:hi]
        lengths = np.diff(ptr)
        width = int(lengths.max())
        padded = np.zeros((len(lengths), width), dtype=np.float64)
        padded[np.arange(width) < lengths[:, None]] = (part * part).astype(np.float64)
        sums = np.cumsum(padded, axis=1)[:, -1]  # in order, as the C loop (trailing + 0.0 is exact)
        zero = np.repeat(sums == 0.0, lengths)
        per = np.repeat(np.sqrt(np.where(sums == 0.0, 1.0, sums)), lengths)
        part[:] = np.where(zero, part, (part.astype(np.float64) / per).astype(np.float32))


class PlainVectorizer:
    """A fitted ArticleVectorizer as plain data; :meth:`transform` gives its vectors.

    Parameters
    ----------
    params : dict
        ``text_fields``, ``tag_field``, ``token_pattern``, ``stop_words`` (list),
        ``ignore_tags``, ``sublinear_tf``, ``latent_weight`` and ``spaces``: per space its
        ``field``, ``weight`` and ``vocabulary`` (terms by column).
    idf : numpy.ndarray of float32
        The spaces' IDF weights, concatenated in column order.
    components : numpy.ndarray of float32, shape (dims, features), or None
        The LSA basis (``TruncatedSVD.components_``).
    """

    def __init__(self, params: dict[str, Any], idf: np.ndarray, components: np.ndarray | None) -> None:
        self.params = params
        self.idf = idf
        self.components = components
        self._tokens = re.compile(params["token_pattern"]).findall
        self._stop = frozenset(params["stop_words"] or ())
        self._tags = TagAnalyzer(params["ignore_tags"])
        self._spaces = []
        start = 0
        for space in params["spaces"]:
            size = len(space["vocabulary"])
            vocab = {term: i for i, term in enumerate(space["vocabulary"])}
            self._spaces.append((space["field"], np.float32(space["weight"]), vocab,
                                 np.asarray(idf[start:start + size], dtype=np.float32), start))
            start += size
        self.n_features = start
        # scipy multiplies by components.T; a C-contiguous (features, dims) copy for row lookups.
        self._basis = None if components is None else np.ascontiguousarray(np.asarray(components).T)

    # -- building ------------------------------------------------------------------
    @classmethod
    def from_estimator(cls, vec: Any) -> PlainVectorizer:
        """The plain form of a fitted :class:`~training.features.ArticleVectorizer`.

        Parameters
        ----------
        vec : ArticleVectorizer

        Returns
        -------
        PlainVectorizer
        """
        spaces, idfs, stop = [], [], None
        for field, fv in vec.field_vectorizers_.items():
            terms = sorted(fv.vocabulary_, key=fv.vocabulary_.__getitem__)
            spaces.append({"field": field, "weight": float(np.float32(vec._weight(field))), "vocabulary": terms})
            idfs.append(np.asarray(fv.idf_, dtype=np.float32))
            if field != vec.tag_field and stop is None:
                stop = sorted(fv.get_stop_words() or ())
        params = {
            "text_fields": list(vec.text_fields), "tag_field": vec.tag_field,
            "token_pattern": vec.token_pattern, "stop_words": stop or [],
            "ignore_tags": sorted(TagAnalyzer(vec.ignore_tags).ignore),
            "sublinear_tf": bool(vec.sublinear_tf), "latent_weight": float(vec.latent_weight),
            "spaces": spaces,
        }
        idf = np.concatenate(idfs) if idfs else np.zeros(0, np.float32)
        components = None if vec.svd_ is None else np.asarray(vec.svd_.components_, dtype=np.float32)
        return cls(params, idf, components)

    def arrays(self) -> dict[str, np.ndarray]:
        """The ``.npy`` files of this vectorizer, by stem (the basis only when LSA is on).

        Returns
        -------
        dict of str to numpy.ndarray
        """
        out = {IDF_STEM: self.idf}
        if self.components is not None:
            out[COMPONENTS_STEM] = np.asfortranarray(self.components)
        return out

    def params_json(self) -> bytes:
        """The JSON file of this vectorizer (``vectorizer.json``).

        Returns
        -------
        bytes
        """
        return json.dumps(self.params, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def load(cls, directory: str | Path) -> PlainVectorizer:
        """Read a version's plain vectorizer (no pickle).

        Parameters
        ----------
        directory : path-like
            A model version directory.

        Returns
        -------
        PlainVectorizer
        """
        directory = Path(directory)
        params = json.loads((directory / PARAMS_FILE).read_bytes())
        idf = np.load(directory / f"{IDF_STEM}.npy", allow_pickle=False)
        basis = directory / f"{COMPONENTS_STEM}.npy"
        components = np.load(basis, allow_pickle=False) if basis.exists() else None
        return cls(params, idf, components)

    # -- transform -----------------------------------------------------------------
    def _analyze(self, text: str) -> list[str]:
        stop = self._stop
        return [w for w in self._tokens(text.lower()) if w not in stop]

    def _counts(self, docs: Iterable[Any], vocab: dict[str, int], tags: bool):
        indptr, indices, values = [0], [], []
        analyze = self._tags if tags else self._analyze
        for doc in docs:
            counter: dict[int, int] = {}
            for token in analyze(doc):
                j = vocab.get(token)
                if j is not None:
                    counter[j] = counter.get(j, 0) + 1
            for j in sorted(counter):
                indices.append(j)
                values.append(counter[j])
            indptr.append(len(indices))
        return (np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int32),
                np.asarray(values, dtype=np.float32))

    def _column(self, records: Sequence[Mapping[str, Any]], field: str) -> list[Any]:
        if field == self.params["tag_field"]:
            return [r.get(field) or [] for r in records]
        if field == ALL_TEXT:
            return ["\n".join(r.get(f) or "" for f in self.params["text_fields"]) for r in records]
        return [r.get(field) or "" for r in records]

    def transform_arrays(self, records: Sequence[Mapping[str, Any]]):
        """Vectorise records into CSR arrays and the dense part, as ArticleVectorizer.transform.

        Parameters
        ----------
        records : sequence of mappings

        Returns
        -------
        indptr : numpy.ndarray of int64, shape (n + 1,)
        indices : numpy.ndarray of int32
        data : numpy.ndarray of float32
            The sparse part, rows with sorted column indices.
        dense : numpy.ndarray of float32, shape (n, dims)
        """
        records = list(records)
        n = len(records)
        blocks = []
        for field, weight, vocab, idf, start in self._spaces:
            indptr, indices, data = self._counts(self._column(records, field), vocab,
                                                 field == self.params["tag_field"])
            if self.params["sublinear_tf"]:
                np.log(data, out=data)
                data += 1.0
            data *= idf[indices]
            _csr_normalize(data, indptr)  # TfidfTransformer's norm
            _csr_normalize(data, indptr)  # ArticleVectorizer normalises each block again
            blocks.append((indptr, indices + np.int32(start), data * weight))
        indptr, indices, data = _hstack(blocks, n)
        _csr_normalize(data, indptr)
        latent = float(self.params["latent_weight"])
        if self._basis is None:
            return indptr, indices, data, np.zeros((n, 0), dtype=np.float32)
        dense = _project(indptr, indices, data, self._basis)
        norms = np.sqrt(np.einsum("ij,ij->i", dense, dense))
        norms[norms < _EPS32] = 1.0
        dense /= norms[:, None]
        dense *= np.float32(np.sqrt(latent))
        return indptr, indices, data * np.float32(float(np.sqrt(1.0 - latent))), dense


def _hstack(blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int):
    """Concatenate CSR blocks side by side (columns already offset), row by row."""
    if not blocks:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    lengths = sum(np.diff(b[0]) for b in blocks)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # every block's entries of row r follow the previous blocks' entries of row r
    row_of = [np.repeat(np.arange(n), np.diff(b[0])) for b in blocks]
    rank = np.concatenate([np.full(len(b[1]), k) for k, b in enumerate(blocks)])
    rows = np.concatenate(row_of)
    order = np.lexsort((rank, rows))  # stable within a block: rows keep their column order
    indices = np.concatenate([b[1] for b in blocks])[order]
    data = np.concatenate([b[2] for b in blocks])[order]
    return indptr, indices.astype(np.int32, copy=False), data.astype(np.float32, copy=False)


def _project(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``x @ basis`` as scipy's ``csr_matvecs``: per row, ``y += a * basis[j]`` in float32, in order."""
    n, dims = len(indptr) - 1, basis.shape[1]
    out = np.zeros((n, dims), dtype=np.float32)
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        if hi > lo:  # cumsum adds in order (reduce and reduceat sum pairwise)
            out[i] = np.cumsum(data[lo:hi, None] * basis[indices[lo:hi]], axis=0)[-1]
    return out
