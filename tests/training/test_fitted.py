"""optim.lr=fitted and train.batch_size=fitted (training.fitted): the values a fits.json's laws give, in the run."""

import json

import pytest
from conftest import cli_overrides
from test_train import run_cli

from scaling_sweep.core.accounting import non_embedding_params, param_counts
from scaling_sweep.core.budget import stop_tokens
from scaling_sweep.core.config import ConfigError
from scaling_sweep.core.runfiles import read_summary
from scaling_sweep.data.tokenizer import vocab_size
from scaling_sweep.training import fitted

# eta* = a N^alpha D^beta and B* = b D^gamma (Step Law's forms), batch in tokens
LAWS = {"eta_ND": {"a": 2.0, "alpha": -0.5, "beta": 0.1}, "B_D": {"b": 0.5, "gamma": 0.5}}


def fits_file(tmp_path, batch_unit="tokens", laws=LAWS):
    path = tmp_path / "fits.json"
    path.write_text(json.dumps({"hparams": {"laws": laws, "source": "grid.csv", "batch_unit": batch_unit}}))
    return str(path)


def test_fitted_values_are_the_laws_at_the_runs_n_and_tokens(tiny_config, tmp_path):
    cfg = tiny_config(optim={"lr": "fitted"}, train={"batch_size": "fitted", "compute_budget": 6e9, "max_steps": 10**6})
    cfg.hparams_fits = fits_file(tmp_path)
    resolved, record = fitted.resolve(cfg)
    N = non_embedding_params(cfg.model)
    D = 6e9 / (6 * N)  # the tokens the budget buys (6·N·D)
    assert resolved.optim.lr == pytest.approx(2.0 * N ** -0.5 * D ** 0.1)
    assert resolved.train.batch_size == round(0.5 * D ** 0.5 / cfg.model.n_ctx)  # tokens -> sequences
    assert record["N"] == N and record["D"] == pytest.approx(D)
    assert record["lr"] == resolved.optim.lr and record["batch_size"] == resolved.train.batch_size
    assert record["laws"] == "eta_ND and B_D fitted to grid.csv (batch in tokens)"
    assert cfg.optim.lr == "fitted"  # the config given is left as it was


def test_a_fixed_batch_fixes_the_tokens_of_a_fitted_lr(tiny_config, tmp_path):
    cfg = tiny_config(optim={"lr": "fitted"})
    cfg.hparams_fits = fits_file(tmp_path)
    resolved, record = fitted.resolve(cfg)
    D = cfg.train.max_steps * cfg.train.batch_size * cfg.model.n_ctx
    assert record["D"] == D and "batch_size" not in record
    assert resolved.optim.lr == pytest.approx(2.0 * non_embedding_params(cfg.model) ** -0.5 * D ** 0.1)


def test_a_fitted_lr_needs_no_batch_law(tiny_config, tmp_path):
    cfg = tiny_config(optim={"lr": "fitted"})
    cfg.hparams_fits = fits_file(tmp_path, laws={"eta_ND": LAWS["eta_ND"]})
    resolved, record = fitted.resolve(cfg)
    assert record["laws"] == "eta_ND fitted to grid.csv" and resolved.train.batch_size == cfg.train.batch_size


def test_a_fitted_batch_is_a_multiple_of_the_processes_and_the_micro_batch(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = tiny_config(train={"batch_size": "fitted", "max_tokens": 10_000_000, "max_steps": 10**9,
                             "micro_batch_size": 3})
    cfg.hparams_fits = fits_file(tmp_path)
    resolved, record = fitted.resolve(cfg)
    assert resolved.train.batch_size % 12 == 0  # the law's 0.5 * 1e7^0.5 / 32 = 49.4 sequences -> 48
    assert resolved.train.batch_size == 48


def test_compute_optimal_stops_set_the_tokens_the_laws_are_read_at(tiny_config, tmp_path):
    cfg = tiny_config(optim={"lr": "fitted"}, train={"compute_budget": 2e11, "stop_at": "compute_optimal",
                                                     "max_steps": 10**6})
    cfg.hparams_fits = fits_file(tmp_path)
    N = non_embedding_params(cfg.model)
    optimal, reason = stop_tokens(N, 2e11, n_total=param_counts(cfg.model, vocab_size(cfg.tokenizer)).total)
    assert reason == "compute_optimal_tokens" and optimal < 2e11 / (6 * N)  # Chinchilla's D_opt, before the budget
    assert fitted.resolve(cfg)[1]["D"] == pytest.approx(optimal)


def test_numbers_hydra_reads_as_ints_or_strings_are_numbers(tiny_config):
    cfg = tiny_config(optim={"lr": 1}, train={"batch_size": "8"})
    resolved, record = fitted.resolve(cfg)
    assert record is None and resolved.optim.lr == 1.0 and isinstance(resolved.optim.lr, float)
    assert resolved.train.batch_size == 8


def test_nothing_fitted_leaves_the_config_alone(tiny_config):
    cfg = tiny_config()
    assert fitted.resolve(cfg) == (cfg, None)


@pytest.mark.parametrize("change,says", [
    (lambda c, p: setattr(c.optim, "lr", "fast"), "optim.lr='fast' must be a float, or fitted"),
    (lambda c, p: setattr(c.optim, "lr", "fitted"), "optim.lr=fitted needs hparams_fits=PATH"),
    (lambda c, p: (setattr(c.train, "batch_size", "fitted"), setattr(c, "hparams_fits", str(p / "none.json"))),
     "hparams_fits=.*none.json: cannot read it"),
    (lambda c, p: (setattr(c.train, "batch_size", "fitted"), setattr(c, "hparams_fits", fits_file(p))),
     "needs the run's tokens fixed by train.compute_budget or train.max_tokens"),
    (lambda c, p: (setattr(c.train, "batch_size", "fitted"), setattr(c.train, "max_tokens", 10_000),
                   setattr(c, "hparams_fits", fits_file(p, batch_unit="sequences"))),
     "needs a fit whose batch is in tokens"),
    (lambda c, p: (setattr(c.optim, "lr", "fitted"), setattr(c, "hparams_fits", fits_file(p, laws={}))),
     "no fitted law for the optimal lr"),
    (lambda c, p: (setattr(c.train, "batch_size", "fitted"), setattr(c.train, "max_tokens", 10**7),
                   setattr(c, "hparams_fits", fits_file(p))),
     "train.max_steps=40 stops the run at .* tokens, before the 10,000,000 its fitted batch is for"),
])
def test_a_fit_that_cannot_answer_is_a_config_error_naming_why(tiny_config, tmp_path, change, says):
    cfg = tiny_config()
    change(cfg, tmp_path)
    with pytest.raises(ConfigError, match=says):
        fitted.resolve(cfg)


def test_a_run_with_fitted_values_records_them_and_their_fit(tiny_config, tmp_path):
    """From the command line: the summary holds the LR and batch it trained with and where they came from."""
    cfg = tiny_config(train={"max_tokens": 20_000})
    run_dir = tmp_path / "run"
    overrides = [o for o in cli_overrides(cfg, run_dir) if not o.startswith(("optim.lr=", "train.batch_size="))]
    overrides = [o for o in overrides if not o.startswith("train.max_steps=")]
    proc = run_cli([*overrides, "optim.lr=fitted", "train.batch_size=fitted", "train.max_steps=100000",
                    "train.max_tokens=20000", f"hparams_fits={fits_file(tmp_path)}"])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = read_summary(run_dir)
    record = summary.fitted_hparams
    assert summary.lr_rule == "fitted" and summary.lr == pytest.approx(record["lr"])
    assert summary.batch_size == record["batch_size"] == round(0.5 * 20_000 ** 0.5 / cfg.model.n_ctx)
    assert record["file"].endswith("fits.json") and record["D"] == 20_000
    assert summary.tokens >= 20_000 and summary.status == "completed"
