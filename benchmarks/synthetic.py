"""Synthetic news corpora drawn from the Reuters-21578 word distribution, for scale benchmarks."""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

try:
    from benchmarks.reuters import DEFAULT_DATA, REPO, load_records
except ImportError:  # run as a script: benchmarks/ is not a package on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.reuters import DEFAULT_DATA, REPO, load_records

#: Share of a topical article's words drawn from its topic's distribution (the rest: global).
TOPIC_SHARE = 0.5


@dataclass
class FieldModel:
    """Unigram distributions of one text field: over all documents and per topic."""

    vocab: np.ndarray  # (V,) object array of words
    cdf: np.ndarray  # (V,) cumulative probabilities of the global distribution
    topic_ids: list[np.ndarray]  # per topic: vocabulary indices of its words
    topic_cdfs: list[np.ndarray]  # per topic: cumulative probabilities over topic_ids


@dataclass
class WordModel:
    """What the generator samples from: per-field word models and per-document templates."""

    title: FieldModel
    body: FieldModel
    topics: list[str]  # topic names; template topic index -1 means "no topic"
    title_len: np.ndarray  # (R, 2) words and distinct words per title of each Reuters record
    body_len: np.ndarray  # (R, 2) words and distinct words per body
    topic: np.ndarray  # (R,) primary topic index, -1 when none
    tags: list[list[str]]  # (R,) tags of each record
    published_at: list[str | None]  # (R,) dates of each record


def _field_model(texts: list[str], topic: np.ndarray, n_topics: int) -> tuple[FieldModel, np.ndarray]:
    """Fit a FieldModel on whitespace tokens; also return each text's (tokens, distinct tokens)."""
    total: Counter = Counter()
    per_topic = [Counter() for _ in range(n_topics)]
    lengths = np.zeros((len(texts), 2), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = text.split()
        lengths[i] = len(tokens), len(set(tokens))
        total.update(tokens)
        if topic[i] >= 0:
            per_topic[topic[i]].update(tokens)
    if not total:
        raise ValueError("the source corpus has no words in this field")
    words = sorted(total, key=lambda w: (-total[w], w))
    index = {w: j for j, w in enumerate(words)}
    counts = np.array([total[w] for w in words], dtype=np.float64)
    topic_ids, topic_cdfs = [], []
    for counter in per_topic:
        ids = np.array([index[w] for w in counter], dtype=np.int64)
        freq = np.array(list(counter.values()), dtype=np.float64)
        topic_ids.append(ids)
        topic_cdfs.append(np.cumsum(freq) / freq.sum() if freq.size else freq)
    vocab = np.array(words, dtype=object)
    return FieldModel(vocab, np.cumsum(counts) / counts.sum(), topic_ids, topic_cdfs), lengths


def fit_word_model(records: Iterable[dict]) -> WordModel:
    """Learn word distributions and document templates from Reuters records.

    Parameters
    ----------
    records : iterable of dict
        Reuters records (``title``, ``body``, ``topics``, ``tags``, ``published_at``).

    Returns
    -------
    WordModel
    """
    records = list(records)
    if not records:
        raise ValueError("no records to learn the word distribution from")
    names = sorted({r["topics"][0] for r in records if r.get("topics")})
    topic_of = {name: i for i, name in enumerate(names)}
    topic = np.array([topic_of[r["topics"][0]] if r.get("topics") else -1 for r in records])
    title, title_len = _field_model([r.get("title") or "" for r in records], topic, len(names))
    body, body_len = _field_model([r.get("body") or "" for r in records], topic, len(names))
    return WordModel(
        title=title, body=body, topics=names, title_len=title_len, body_len=body_len,
        topic=topic, tags=[list(r.get("tags") or []) for r in records],
        published_at=[r.get("published_at") for r in records],
    )


def _draw_field(model: FieldModel, sizes: np.ndarray, topic: np.ndarray,
                rng: np.random.Generator) -> list[str]:
    """Texts of the given (tokens, distinct) sizes.

    ``distinct`` words are drawn fresh, a TOPIC_SHARE of them from the topic's distribution
    and the rest from the global one; the other ``tokens - distinct`` words repeat words
    already drawn (uniformly), so words recur within a text as they do in real news.
    """
    lengths, fresh = sizes[:, 0], sizes[:, 1]
    n_topic = np.where(topic >= 0, rng.binomial(fresh, TOPIC_SHARE), 0)
    n_global = fresh - n_topic
    global_words = np.searchsorted(model.cdf, rng.random(int(n_global.sum())), side="right")
    global_words = np.minimum(global_words, model.vocab.size - 1)
    g_end = np.cumsum(n_global)
    topic_words: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for t in np.unique(topic[(topic >= 0) & (n_topic > 0)]):
        rows = np.flatnonzero(topic == t)
        cdf, ids = model.topic_cdfs[t], model.topic_ids[t]
        draws = np.minimum(np.searchsorted(cdf, rng.random(int(n_topic[rows].sum())), side="right"),
                           ids.size - 1)
        topic_words[int(t)] = (ids[draws], np.cumsum(n_topic[rows]))
    position = {int(t): 0 for t in topic_words}
    texts = []
    for i in range(lengths.size):
        words = global_words[g_end[i] - n_global[i] : g_end[i]]
        t = int(topic[i])
        if n_topic[i]:
            drawn, ends = topic_words[t]
            k = position[t]
            own = drawn[ends[k] - n_topic[i] : ends[k]]
            words = rng.permutation(np.concatenate([words, own]))
        if t in position:
            position[t] += 1
        if lengths[i] > fresh[i]:
            words = np.concatenate([words, rng.choice(words, lengths[i] - fresh[i])])
            rng.shuffle(words)
        texts.append(" ".join(model.vocab[words]))
    return texts


def generate(model: WordModel, n: int, seed: int = 0) -> Iterator[dict]:
    """Yield ``n`` synthetic articles, each modelled on a random Reuters record.

    Each article takes a random Reuters record as a template (its title and body lengths
    and numbers of distinct words, primary topic, tags and date) and draws its words from
    the Reuters unigram distribution, half of them from the template topic's own
    distribution (topical structure); repeated words re-use words already in the text.

    Parameters
    ----------
    model : WordModel
        From :func:`fit_word_model`.
    n : int
        Number of articles.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same corpus.

    Yields
    ------
    dict
        ``id`` (``syn-<seed>-<i>``), ``title``, ``body``, ``tags``, ``published_at``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    chunk = 10_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        templates = rng.integers(0, model.topic.size, size=size)
        topic = model.topic[templates]
        titles = _draw_field(model.title, model.title_len[templates], topic, rng)
        bodies = _draw_field(model.body, model.body_len[templates], topic, rng)
        for j, r in enumerate(templates):
            yield {
                "id": f"syn-{seed}-{start + j}", "title": titles[j], "body": bodies[j],
                "tags": model.tags[r], "published_at": model.published_at[r],
            }


def write_corpus(path: str | Path, n: int, seed: int = 0, data: str | Path = DEFAULT_DATA) -> int:
    """Write a synthetic corpus of ``n`` articles as JSON Lines, gzip-compressed.

    Parameters
    ----------
    path : str or Path
        Output ``.jsonl.gz`` file; must lie outside the repository (never commit the data).
    n : int
        Number of articles.
    seed : int
        Generator seed.
    data : str or Path
        ``reuters21578.jsonl.gz``, the source of the word distribution.

    Returns
    -------
    int
        Articles written.
    """
    path = Path(path).resolve()
    if REPO in path.parents:
        raise ValueError(f"{path} is inside the repository {REPO}: write synthetic data to a temp dir")
    model = fit_word_model(load_records(data))
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
        for record in generate(model, n, seed):
            fh.write(json.dumps(record) + "\n")
            count += 1
    tmp.replace(path)
    return count


@click.command()
@click.option("--n", "n", required=True, type=click.IntRange(min=1), help="Articles to generate.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .jsonl.gz, outside the repository.")
@click.option("--seed", default=0, show_default=True, type=int, help="Generator seed.")
@click.option("--data", default=DEFAULT_DATA, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="reuters21578.jsonl.gz")
def main(n: int, out: Path, seed: int, data: Path) -> None:
    """Write N synthetic articles drawn from the Reuters word distribution to OUT."""
    try:
        written = write_corpus(out, n, seed, data)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{written} articles -> {out}")


if __name__ == "__main__":
    main()
