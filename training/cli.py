"""The `related` command line: train, update, export, query, evaluate and serve."""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
from pathlib import Path

if sys.argv[1:2] == ["update"]:  # before numpy starts its BLAS threads: an update does no BLAS work,
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # and idle ones spin on the other core

import click  # noqa: E402
import numpy as np  # noqa: E402

from training import model_dir  # noqa: E402
from training.corpus import CorpusError, FieldMap  # noqa: E402

MODELS_DIR = click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
    envvar="RELATED_MODELS_DIR", show_default=True, show_envvar=True,
    help="The model store.",
)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def field_options(func):
    """Add the corpus schema options (``--id-field`` ...) to a command."""
    options = [
        click.option("--id-field", default="id", show_default=True, help="Field holding the article id."),
        click.option("--text-fields", default="title,body", show_default=True,
                     help="Comma-separated text fields, each its own TF-IDF space."),
        click.option("--tag-fields", default="tags", show_default=True,
                     help="Comma-separated fields holding tag lists (CSV: one '|'-separated cell)."),
        click.option("--date-field", default="published_at", show_default=True,
                     help="Field holding the ISO 8601 publication date ('' for none)."),
        click.option("--url-field", default="url", show_default=True, help="Field holding the URL."),
        click.option("--title-field", default="title", show_default=True, help="Field shown as the title."),
        click.option("--skip-invalid", is_flag=True, help="Skip invalid records instead of stopping."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_fields(id_field, text_fields, tag_fields, date_field, url_field, title_field) -> FieldMap:
    """Build the :class:`FieldMap` from the CLI's field options.

    Returns
    -------
    FieldMap
    """
    try:
        return FieldMap(
            id_field=id_field, text_fields=_split(text_fields), tag_fields=_split(tag_fields),
            date_field=date_field or None, url_field=url_field, title_field=title_field,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


class _LazyGroup(click.Group):
    """A group whose ``serve`` command is imported only when used (it imports gunicorn and Flask)."""

    lazy = {"serve": ("service.cli", "serve")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(n for n in self.lazy if self._load(n) is not None)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._load(name)

    def _load(self, name: str) -> click.Command | None:
        if name not in self.lazy:
            return None
        module, attr = self.lazy[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError:  # the service wing is optional for training-only installs
            return None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="related-articles")
def main() -> None:
    """Related articles: train a model from a corpus, inspect it, evaluate it, serve it."""


@main.command()
@click.option("--corpus", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON Lines (.jsonl, .jsonl.gz) or CSV corpus.")
@MODELS_DIR
@field_options
@click.option("--neighbors", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Related articles stored per article (N).")
@click.option("--candidates", default=200, show_default=True, type=click.IntRange(0),
              help="Latent-space candidates rescored per article; 0 = exhaustive search.")
@click.option("--jobs", default=-1, show_default=True, type=int, help="Workers (-1: all cores).")
@click.option("--keep", default=3, show_default=True, type=click.IntRange(1), help="Versions kept.")
@click.option("--features-from", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Reuse the fitted features of this version directory (no refit).")
@click.option("--ignore-tags", default="", help="Comma-separated tags that never count as a signal.")
@click.option("--param", "params", multiple=True, metavar="NAME=JSON",
              help="ArticleVectorizer parameter, e.g. --param n_components=300 (repeatable).")
def train(corpus, models_dir, id_field, text_fields, tag_fields, date_field, url_field,
          title_field, skip_invalid, neighbors, candidates, jobs, keep, features_from, ignore_tags, params):
    """Train on CORPUS and publish a new model version."""
    from training.pipeline import train as run

    fields = make_fields(id_field, text_fields, tag_fields, date_field, url_field, title_field)
    vectorizer_params = {}
    for item in params:
        name, _, raw = item.partition("=")
        try:
            vectorizer_params[name] = json.loads(raw)
        except json.JSONDecodeError:
            vectorizer_params[name] = raw
    if ignore_tags:
        vectorizer_params["ignore_tags"] = _split(ignore_tags)
    bar = None

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total >= 5000:
            bar = click.progressbar(length=total, label="related lists", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(done - bar.pos)

    try:
        result = run(
            corpus, models_dir, fields=fields, skip_invalid=skip_invalid, neighbors=neighbors,
            candidates=candidates, n_jobs=jobs, keep=keep, features_from=features_from,
            vectorizer_params=vectorizer_params, progress=progress,
        )
    except (CorpusError, model_dir.ModelDirError, FileNotFoundError, TypeError, ValueError) as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for error in result.skipped:
        click.echo(f"skipped: {error}", err=True)
    total = sum(result.timings.values())
    click.echo(result.version)
    click.echo(
        f"articles: {result.articles}  vocabulary: {result.vocabulary}  "
        f"latent dims: {result.latent_dims}  skipped: {len(result.skipped)}  time: {total:.1f} s"
    )
    dups = result.duplicates
    click.echo(
        f"duplicates: {len(dups['exact_groups'])} exact groups, {len(dups['groups'])} groups "
        f"at similarity >= {dups['threshold']} (listed in the manifest)"
    )


@main.command()
@click.option("--corpus", "delta", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Delta corpus: new records, edited records (known id), "
                   '{"id": ..., "deleted": true} removals.')
@MODELS_DIR
@click.option("--jobs", default=-1, show_default=True, type=int, help="Workers (-1: all cores).")
@click.option("--keep", default=3, show_default=True, type=click.IntRange(1), help="Versions kept.")
def update(delta, models_dir, jobs, keep):
    """Apply a delta to the current version and publish the result (no refit)."""
    from training.update import update as run

    try:
        result = run(models_dir, delta, keep=keep, n_jobs=jobs)
    except (CorpusError, model_dir.ModelDirError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    rows = result.rows
    click.echo(result.version)
    click.echo(
        f"articles: {result.articles}  added: {result.added}  edited: {result.edited}  "
        f"deleted: {result.deleted}  time: {sum(result.timings.values()):.2f} s"
    )
    click.echo(
        f"first-pass lists: {rows['kept']} kept, {rows['patched']} patched, "
        f"{rows['recomputed']} recomputed (parent {result.parent})"
    )


def _load_lists(models_dir: Path, version: str | None):
    try:
        path = model_dir.resolve(models_dir, version)
        manifest = model_dir.verify(path)
    except (model_dir.ModelDirError, OSError, ValueError) as exc:
        _fail(str(exc))
    ids = model_dir.load_array(path, "article_ids")
    idx = model_dir.load_array(path, "neighbors_indices")
    scores = model_dir.load_array(path, "neighbors_scores")
    return path, manifest, ids, idx, scores


def related_lists(ids: np.ndarray, idx: np.ndarray, scores: np.ndarray, k: int):
    """Yield ``(id, [(related id, score), ...])`` per row from the stored neighbour arrays.

    Parameters
    ----------
    ids, idx, scores : the stored arrays
    k : int
        Maximum list length.

    Yields
    ------
    tuple
    """
    for row in range(len(ids)):
        items = [(str(ids[j]), float(s)) for j, s in zip(idx[row, :k], scores[row, :k]) if j >= 0]
        yield str(ids[row]), items


@main.command()
@MODELS_DIR
@click.option("--version", "version", default=None, help="Version to export (default: CURRENT).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1), help="List length.")
@click.option("--out", type=click.File("w"), default="-", help="Output file (default: stdout).")
def export(models_dir, version, k, out):
    """Write every article's related list as JSON Lines."""
    _, _, ids, idx, scores = _load_lists(models_dir, version)
    for article_id, items in related_lists(ids, idx, scores, k):
        record = {"id": article_id, "related": [{"id": i, "score": round(s, 6)} for i, s in items]}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


@main.command()
@click.argument("article_id")
@MODELS_DIR
@click.option("--version", "version", default=None, help="Version to query (default: CURRENT).")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1), help="List length.")
def query(article_id, models_dir, version, k):
    """Print the related list of ARTICLE_ID with titles and scores."""
    path, _, ids, idx, scores = _load_lists(models_dir, version)
    rows = {str(v): i for i, v in enumerate(ids)}
    if article_id not in rows:
        _fail(f"unknown article id {article_id!r} in {path}")
    articles = model_dir.read_articles(path)
    row = rows[article_id]
    click.echo(f"{article_id}  {articles[row].get('title', '')}")
    for rank, (j, s) in enumerate(zip(idx[row, :k], scores[row, :k]), start=1):
        if j < 0:
            break
        click.echo(f"{rank:>3}. {s:.3f}  {articles[j]['id']}  {articles[j].get('title', '')}")


@main.command()
@click.option("--corpus", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Corpus holding the labels (JSON Lines).")
@click.option("--label-field", required=True, help="Field holding each article's label list.")
@click.option("--id-field", default="id", show_default=True)
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File of query ids, one per line (default: every article).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--json", "json_out", type=click.File("w"), help="Write the metrics as JSON here.")
@MODELS_DIR
@click.option("--version", "version", default=None, help="Version to evaluate (default: CURRENT).")
def evaluate(corpus, label_field, id_field, queries, k, json_out, models_dir, version):
    """Score the model's lists by the EVALUATION.md protocol (P@k, MAP@k, nDCG@k, coverage)."""
    from training.evaluate import evaluate as score
    from training.evaluate import load_labels

    _, _, ids, idx, scores = _load_lists(models_dir, version)
    labels_all = load_labels(corpus, label_field, id_field=id_field)
    pool = [str(i) for i in ids]
    missing = [i for i in pool if i not in labels_all]
    if missing:
        _fail(f"{len(missing)} model articles have no record in {corpus} (first: {missing[0]!r})")
    labels = {i: labels_all[i] for i in pool}
    query_ids = None
    if queries is not None:
        query_ids = [line.strip() for line in queries.read_text().splitlines() if line.strip()]
    related = {a: [i for i, _ in items] for a, items in related_lists(ids, idx, scores, k)}
    try:
        result = score(related, labels, query_ids, k=k)
    except ValueError as exc:
        _fail(str(exc))
    for key in ("precision_at_k", "map_at_k", "ndcg_at_k", "coverage"):
        click.echo(f"{key.replace('_at_k', f'@{k}'):<14} {result[key]:.4f}")
    click.echo(f"queries        {result['queries']}")
    if json_out is not None:
        json_out.write(json.dumps(result, indent=2) + "\n")


def entry() -> None:
    """The ``related`` console script: :func:`main`, then an exit without a last walk of the heap.

    The interpreter's final garbage collection walks every object the command left (about
    30 ms after an update); frozen, they are skipped. Files are closed by then, and nothing
    the commands leave needs a finalizer.
    """
    try:
        main()
    finally:
        gc.freeze()
