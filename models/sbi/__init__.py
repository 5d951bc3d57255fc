"""Simulation-based inference of the CP coupling c_HW̃ in WH: CARL, ALICE, ALICES, SALLY.

Joint quantities (docs/physics.md §3, arXiv:1805.00020)
--------------------------------------------------
Each generated WH event carries three weights, sm, int and quad
(``CPWeight_*``), such that its weight at coupling c is exactly

    w(c) = sm + c·int + c²·quad,            σ(c) = Σ_events w(c)

(σ summed over the events of the sample the density refers to: after the event
selection, for detector-level densities). With z the generator record,
p(x, z|c) ∝ w(c)/σ(c), so the joint likelihood ratio and joint score are

    r(x, z|c0, c1) = [w(c0)/σ(c0)] / [w(c1)/σ(c1)]
    t(x, z|c)      = ∂_c ln[w(c)/σ(c)] = (int + 2c·quad)/w(c) − (Σint + 2cΣquad)/σ(c).

Estimators (losses in MadMiner conventions, r = p(x|θ0)/p(x|θ1), ŝ = 1/(1 + r̂))
--------------------------------------------------------------------------------
* CARL: a classifier between θ0 (label 0) and θ1 (label 1): BCE(ŝ, y).
* ALICE: the same network with the joint target: BCE(ŝ, s(x, z)), s = 1/(1 + r(x, z)).
* ALICES: ALICE + α·(1 − y)·(t̂(x|θ0) − t(x, z|θ0))², with t̂ = ∂_θ0 ln r̂ from the
  network by automatic differentiation (the score term on the θ0 rows, whose
  events follow p(x, z|θ0)).
* SALLY: a regression t̂(x) of the joint score at the SM, MSE(t̂, t(x, z|0)); its
  output is the locally optimal observable, with Fisher information
  I = ν · E_SM[t̂²] (ν expected events).

The ratio estimators are parameterised in θ0 = c (an extra, last input) with the
reference θ1 = 0 (the SM): r̂(x|c) = p̂(x|c)/p(x|0). The network is *anchored*,
logit(x, c) = g(x, c) − g(x, 0), so r̂(x|0) = 1 exactly.

Weighted events instead of unweighting. No sample is drawn at each c: the
same events are used for every class with their weights. A training row is an
event e with a drawn c_e (uniform in [−c_max, c_max], ``theta_draws`` per
event) in two copies, label 0 with weight w_e(c_e)/σ(c_e) (the event as a draw
from θ0 = c_e) and label 1 with weight sm_e/σ(0) (a draw from θ1 = 0). Each
class then has unit total weight per c (balanced classes) and the weighted
losses have the same minimum as for unweighted samples of p(x|c) and p(x|0);
SALLY's rows are weighted with sm_e. All weights here are positive (w(c) > 0
for every c in this generator).

A consequence: with both classes made of the same events, CARL's loss of an
event, w0·BCE(ŝ, 0) + w1·BCE(ŝ, 1) = (w0 + w1)·BCE(ŝ, w1/(w0 + w1)), is ALICE's
loss (s(x, z) = w1/(w0 + w1) for these weights) summed over the two rows. The
minima agree. How fast they are reached depends on where the two rows go: if
CARL's two rows of an event fall into different minibatches (and into the
training or the validation split independently), its gradients carry the hard
labels, ±(ŝ − y) ≈ ±1/2 per row, where ALICE's carry ŝ − s(x, z), of the size of
the effect itself. Near the SM (ratios within a few per cent of 1) that label
noise swamps the signal: on WH the validation loss stayed at ln 2 from the first
epoch and CARL's local Fisher information was 3 against 840 for the truth. CARL
is therefore trained with the two rows of an event (same x, same drawn c) as a
pair (``pair`` of :func:`~ewpolar.models.sbi.data.ratio_training_data`), in the
same minibatch and on the same side of the validation split: the hard labels of
the pair cancel to (w0 + w1)(ŝ − w1/(w0 + w1)), and CARL learns as fast as ALICE
(WH: 610 against ALICE's 609, projected on the exact score). It still sees only
x, c, the labels and the class weights.

Estimators that have not learnt the coupling are flagged: an estimator whose
Fisher information about the exact score, ν·Cov(t̂, t)²/Var(t̂), is below
:data:`~ewpolar.models.sbi.study.FISHER_FLAG_FRACTION` (25 %) of the truth's
(an interval at least twice as wide as the truth-level one) has its interval
marked "not usable" in ``limits.md`` and ``limits.json``, a warning on stderr,
and a faded curve in the figure.

Expected limits (Asimov data at the SM, luminosity × σ of the config)
---------------------------------------------------------------------
All curves are −2Δln L(c) of the *expected* data under the SM, evaluated on the
same held-out events (not used in training), each event with its expected
yield W_e(c) = L · σ_gen · w_e(c)/Σ_gen sm (so ν(c) = Σ_e W_e(c) includes the
selection efficiency and the change of rate with c):

* (a) binned Q_ℓ cos δ⁺ × p_T^W (the config's histogram binning; values outside
  the edges go to the end bins): Poisson likelihood of the signal alone, per bin
  ν_i(c) = SM_i + c·INT_i + c²·QUAD_i, data n_i = ν_i(0). This is the binned
  likelihood of :func:`ewpolar.stats.wh.fit_wh` without backgrounds and systematics;
* (b) SALLY: the same binned likelihood in ``sally_bins`` bins of t̂(x), with
  edges at the SM-weighted quantiles of t̂ on the training events;
* (c) CARL / ALICE / ALICES: the extended unbinned likelihood

      −2Δln L(c) = 2[ν(c) − ν(0)] − 2 Σ_e W_e(0) · ln[ν(c)/ν(0) · r̂(x_e|c)],

  with r̂ normalised on the evaluation events, Σ_e W_e(0) r̂(x_e|c) = ν(0) (the
  exact ratio satisfies E_SM[r] = 1; the normalisation removes an overall offset
  of the network output, which would otherwise move the minimum away from the SM);
* truth: the same with the exact joint ratio w(c)/w(0) (the generator record
  known): the information of the full event, an upper bound for every
  detector-level method;
* (a′), optional (``SBISettings.analysis_fit``): the analysis itself on separately
  generated samples of every dataset of the config: ``generate``,
  :func:`ewpolar.runner.run.run_analysis`, :func:`ewpolar.stats.wh.fit_wh` (Asimov, with
  backgrounds, control region and systematic uncertainties profiled); its
  distance from (a) is what backgrounds and systematics cost.

The 68 % and 95 % CL intervals are where −2Δln L crosses 1 and 3.84
(:func:`ewpolar.stats.likelihood.interval_from_scan`). Fisher informations at c = 0 (shape
only, the rate term ν(Σint/Σsm)² is reported separately): binned Σ_i INT_i²/SM_i
− (ΣINT)²/ΣSM; score-based ν·Var_SM(t̂) for SALLY (and the local scores of the
ratio estimators, t̂ = ∂_c ln r̂ at c = 0); exact ν·E_SM[t(x, z|0)²]. An
estimated score can carry noise that inflates ν·Var(t̂); ν·Cov(t̂, t)²/Var(t̂) is
the information t̂ carries about the true joint score and is reported beside it.

Modules
-------
* :mod:`~ewpolar.models.sbi.data`: the joint quantities, :class:`~ewpolar.models.sbi.data.CPSample`
  (selected WH events with their CP weights), :func:`~ewpolar.models.sbi.data.wh_sample`
  and the training rows of the parameterised ratio estimators;
* :mod:`~ewpolar.models.sbi.estimators`: the networks, losses and training of CARL,
  ALICE, ALICES and SALLY, and their ONNX export;
* :mod:`~ewpolar.models.sbi.information`: Asimov likelihood scans and Fisher informations;
* :mod:`~ewpolar.models.sbi.plots`: the −2Δln L(c) figure;
* :mod:`~ewpolar.models.sbi.study`: :func:`~ewpolar.models.sbi.study.run_wh_sbi`, the
  whole study (``ewpolar sbi``), and its result containers.
"""
