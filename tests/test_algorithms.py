"""Each forward-only algorithm is what it claims to be: local learning, the paper's math."""
import copy

import pytest
import torch
import torch.nn.functional as F

from fwdlib import algorithms, data
from fwdlib.algorithms import cafo, ff, mf

SHAPE = (1, 8, 8)


def grads(module):
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in module.named_parameters()}


# ------------------------------------------------------------------ Mono-Forward

def test_mf_gradients_equal_the_closed_forms():
    torch.manual_seed(0)
    net = mf.MonoForward(SHAPE, 5, hidden=(7, 6))
    x, y = torch.randn(9, *SHAPE), torch.randint(0, 5, (9,))
    a0 = x.flatten(1)
    a1, _ = net.layer_forward(0, a0)
    net.zero_grad()
    losses = net.local_losses(x, y)
    losses[1].backward()                                   # layer 2 alone
    layer, m = net.layers[1], net.projections[1]
    z = a1 @ layer.weight.T + layer.bias
    a2 = F.relu(z)
    e = (a2 @ m.T).softmax(1) - F.one_hot(y, 5).float()
    delta = (e @ m) * (z > 0).float()
    torch.testing.assert_close(m.grad, e.T @ a2 / 9)
    torch.testing.assert_close(layer.weight.grad, delta.T @ a1 / 9)
    torch.testing.assert_close(layer.bias.grad, delta.mean(0))
    assert net.layers[0].weight.grad is None                # nothing reached the layer below


def test_mf_summed_backward_equals_separate_backwards():
    torch.manual_seed(0)
    net = mf.MonoForward(SHAPE, 4, hidden=(10, 10, 10))
    x, y = torch.randn(16, *SHAPE), torch.randint(0, 4, (16,))
    torch.stack(net.local_losses(x, y)).sum().backward()
    together = grads(net)
    for i in range(3):                                     # each layer's loss on an isolated copy
        alone = copy.deepcopy(net)
        alone.zero_grad(set_to_none=True)
        alone.local_losses(x, y)[i].backward()
        for name, g in grads(alone).items():
            if g is not None:
                torch.testing.assert_close(together[name], g)
                assert f".{i}." in f".{name}." or name.endswith(str(i))


def test_mf_greedy_stages_and_bad_options(sample):
    net = mf.MonoForward(sample.input_shape, 10, hidden=(16, 16), schedule="greedy", epochs_per_layer=1)
    assert [s.name for s in net.stages()] == ["layer1", "layer2"]
    stage = net.stages()[1]
    data = net.begin_stage(stage, sample)
    assert data.train.x.shape == (5400, 16)                # cached activations of layer 1
    frozen = net.layers[0].weight.clone()
    net.train_step(data.train.x[:32], data.train.y[:32], stage)
    assert torch.equal(frozen, net.layers[0].weight)
    with pytest.raises(ValueError, match="schedule"):
        mf.MonoForward(SHAPE, 3, schedule="layerwise")


# ------------------------------------------------------------------ Forward-Forward

def test_ff_negative_labels_are_never_the_truth_and_cover_all_others():
    y = torch.randint(0, 10, (20_000,))
    neg = ff.wrong_labels(y, 10)
    assert not bool((neg == y).any())
    counts = torch.bincount((neg - y) % 10, minlength=10)
    assert counts[0] == 0 and bool((counts[1:] > 1900).all())   # uniform over the 9 wrong ones


def test_ff_goodness_threshold_conventions():
    h = torch.tensor([[1.0, 2.0, 0.0, 1.0]])
    assert ff.goodness(h).item() == 6.0
    # the network's thresholds are its widths, so its sum-goodness decides like mean-of-squares
    # against 1: p(positive) > 1/2 exactly when the mean squared activity exceeds 1
    torch.manual_seed(0)
    net = ff.ForwardForward(SHAPE, 3, hidden=(6, 5))
    assert net.thresholds() == [6.0, 5.0]
    x, y = 3 * torch.randn(200, *SHAPE), torch.randint(0, 3, (200,))
    for h, theta in zip(net.activities(ff.embed_label(x, y, 3)), net.thresholds()):
        p_positive = torch.sigmoid(ff.goodness(h) - theta)
        assert torch.equal(p_positive > 0.5, h.pow(2).mean(1) > 1)
        assert 0 < int((p_positive > 0.5).sum()) < 200          # both sides occur: the check has teeth
    loss = ff.ff_layer_loss(torch.tensor([6.0]), torch.tensor([2.0]), theta=4.0)
    assert loss.item() == pytest.approx(F.softplus(torch.tensor(-2.0)).item() * 2)


def test_ff_label_embedding_and_normalisation():
    x = torch.randn(3, 1, 4, 4)
    out = ff.embed_label(x, torch.tensor([0, 2, 1]), 3)
    assert out[:, :3].tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert torch.equal(out[:, 3:], x.flatten(1)[:, 3:])
    assert torch.allclose(ff.embed_label(x, None, 3)[:, :3], torch.full((3, 3), 1 / 3))
    r = ff.rms_normalise(torch.randn(5, 20) * 7)
    torch.testing.assert_close(r.pow(2).mean(1), torch.ones(5))


def test_ff_predictions_match_a_hand_computed_example():
    torch.manual_seed(0)
    net = ff.ForwardForward((1, 2, 2), 2, hidden=(3, 3), score_from=1, prediction="goodness")
    x = torch.randn(4, 1, 2, 2)
    expected = []
    for c in range(2):                                      # by hand: write label c, run layers
        h = ff.embed_label(x, torch.full((4,), c), 2)
        for layer in net.layers:
            h = F.relu(layer(h / h.pow(2).mean(1, keepdim=True).sqrt()))
        expected.append(h.pow(2).sum(1))                   # layer 2 only (score_from=1)
    assert torch.equal(net.predict(x), torch.stack(expected, 1).argmax(1))
    h = ff.embed_label(x, None, 2)
    h1 = F.relu(net.layers[0](ff.rms_normalise(h)))
    h2 = F.relu(net.layers[1](ff.rms_normalise(h1)))
    net.prediction = "head"
    torch.testing.assert_close(net.logits(x), net.head(ff.rms_normalise(h2)))


def test_ff_learning_is_local():
    torch.manual_seed(0)
    net = ff.ForwardForward(SHAPE, 4, hidden=(12, 12, 12))
    x, y = torch.randn(16, *SHAPE), torch.randint(0, 4, (16,))
    torch.manual_seed(1)
    torch.stack(net.ff_losses(x, y)).sum().backward()
    together = grads(net.layers)
    for i in range(3):
        alone = copy.deepcopy(net)
        alone.zero_grad(set_to_none=True)
        torch.manual_seed(1)                                # the same negatives
        alone.ff_losses(x, y)[i].backward()
        for name, g in grads(alone.layers).items():
            if name.startswith(f"{i}."):
                torch.testing.assert_close(together[name], g)
            else:
                assert g is None                            # loss i touches layer i only


# ------------------------------------------------------------------ Cascaded Forward

def test_sparsemax_on_the_simplex_sparse_and_known_values():
    z = torch.tensor([[1.0, 0.0, -1.0], [0.9, 0.2, -0.5], [0.5, 0.4, 0.1]])
    p = cafo.sparsemax(z)
    torch.testing.assert_close(p[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(p[1], torch.tensor([0.85, 0.15, 0.0]))
    torch.testing.assert_close(p[2], torch.tensor([0.5, 0.4, 0.1]))  # all in the support
    q = cafo.sparsemax(torch.randn(100, 10) * 3)
    assert bool((q >= 0).all()) and torch.allclose(q.sum(1), torch.ones(100))
    assert (q == 0).float().mean() > 0.3


def test_sparsemax_loss_gradient_is_sparsemax_minus_onehot():
    z = torch.randn(6, 5, requires_grad=True)
    y = torch.randint(0, 5, (6,))
    cafo.sparsemax_loss(z, y, reduction="sum").backward()
    torch.testing.assert_close(z.grad, cafo.sparsemax(z.detach()) - F.one_hot(y, 5).float())
    assert cafo.sparsemax_loss(z.detach(), y).item() >= 0


def test_ridge_equals_torch_least_squares():
    h, targets, lam = torch.randn(50, 8, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64), 0.7
    w = cafo.ridge_solution(h, targets, lam)
    stacked = torch.cat([h, lam ** 0.5 * torch.eye(8, dtype=torch.float64)])
    padded = torch.cat([targets, torch.zeros(8, 3, dtype=torch.float64)])
    torch.testing.assert_close(w, torch.linalg.lstsq(stacked, padded).solution)


def test_cafo_mse_predictor_is_the_closed_form(sample):
    net = algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, loss="mse",
                           channels=(4, 8, 8), ridge=2.0)
    stage = net.stages()[0]
    assert stage.closed_form
    data = net.begin_stage(stage, sample)
    net.solve(stage, data)
    h = cafo.with_bias(data.train.x.double())
    targets = F.one_hot(data.train.y, 10).double()
    # the oracle: least squares on [H; sqrt(lam) I without the bias's row] against [Y; 0]
    penalty = 2.0 ** 0.5 * torch.eye(h.shape[1], dtype=torch.float64)[:-1]
    w = torch.linalg.lstsq(torch.cat([h, penalty]), torch.cat([targets, torch.zeros(len(penalty), 10,
                                                                                   dtype=torch.float64)])).solution
    torch.testing.assert_close(net.predictors[0].weight.double(), w[:-1].T, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net.predictors[0].bias.double(), w[-1], rtol=1e-4, atol=1e-5)


def test_cafo_rand_batchnorm_uses_training_statistics_consistently(sample):
    net = algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, channels=(4, 8, 8))
    data = net.begin_stage(net.stages()[0], sample)
    net.train()
    assert not net.blocks[0].training                      # frozen blocks never use batch stats
    cached = data.train.x[:5]
    fresh = net.blocks[0](sample.train.x[:5]).flatten(1)
    torch.testing.assert_close(cached, fresh)
    pooled = net.blocks[0][:-1](sample.train.x)
    torch.testing.assert_close(net.blocks[0][-1].running_mean, pooled.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(net.blocks[0][-1].running_var, pooled.var((0, 2, 3)), atol=1e-4, rtol=1e-3)


def test_cafo_features_come_from_one_pass_equal_to_the_calibrated_blocks_own_output(sample):
    net = algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, channels=(4, 8, 8), feature_chunk=37)
    small = data.first(sample, 100, 50)                         # chunks of 37: two whole, one ragged
    calls = []
    net.blocks[1][0].register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    net.begin_stage(net.stages()[0], small)
    stage = net.begin_stage(net.stages()[1], small)
    assert calls == [37, 37, 26, 37, 13]                         # the training split once, then validation
    block1 = torch.cat([net.blocks[0](small.train.x[s:s + 37]) for s in range(0, 100, 37)])
    expected = torch.cat([net.blocks[1](block1[s:s + 37]) for s in range(0, 100, 37)])
    assert torch.equal(stage.train.x, expected.flatten(1))        # bit for bit: the same ops on the same chunks
    assert stage.val.x.shape == (50, 8 * 7 * 7)
    pooled = net.blocks[1][:-1](block1).double()
    torch.testing.assert_close(net.blocks[1][-1].running_mean, pooled.mean((0, 2, 3)).float())


def test_dfa_updates_depend_only_on_output_error_and_feedback():
    torch.manual_seed(0)
    net = algorithms.build("cafo-dfa", input_shape=(1, 8, 8), num_classes=3, channels=(2, 3, 4))
    x, y = torch.randn(5, 1, 8, 8), torch.randint(0, 3, (5,))
    net.train()
    outputs, h = [], x
    for block in net.blocks:
        h = block(h.detach())
        outputs.append(h)
    logits = net.dfa_head(outputs[-1].flatten(1))
    error = (logits.softmax(1) - F.one_hot(y, 3).float()).detach() / 5
    expected = []
    for i, out in enumerate(outputs):                       # block i's own backward of e B_i
        g = torch.autograd.grad(out, list(net.blocks[i].parameters()),
                                (error @ getattr(net, f"feedback{i}")).view_as(out), retain_graph=True)
        expected.append(g)
    net.dfa_optimizer.step = lambda: None                   # keep the weights to compare grads
    net.dfa_step(x, y)
    for i, block in enumerate(net.blocks):
        for p, g in zip(block.parameters(), expected[i]):
            torch.testing.assert_close(p.grad, g)
    # changing the feedback of block 1 changes block 1's gradient and nothing else's
    before = [[p.grad.clone() for p in block.parameters()] for block in net.blocks]
    net.feedback0.mul_(2)
    net.dfa_step(x, y)
    for p, g in zip(net.blocks[0].parameters(), before[0]):
        torch.testing.assert_close(p.grad, 2 * g)
    for block, grads_before in zip(net.blocks[1:], before[1:]):
        for p, g in zip(block.parameters(), grads_before):
            torch.testing.assert_close(p.grad, g)


def test_cafo_aggregation_and_block_accuracy(sample):
    net = algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, channels=(4, 8, 8))
    z = [torch.randn(3, 10) for _ in range(3)]
    torch.testing.assert_close(net.combine(z), sum(t.softmax(1) for t in z))
    torch.testing.assert_close(net.combine(z, blocks=[2]), z[2].softmax(1))
    assert len(net.block_accuracy(sample.val)) == 3
    with pytest.raises(ValueError, match="aggregate"):
        algorithms.build("cafo-rand", input_shape=(1, 28, 28), num_classes=10, aggregate="max")


def test_ff_validation_loss_is_the_same_for_the_same_weights(sample):
    net = algorithms.build("ff", input_shape=sample.input_shape, num_classes=10, hidden=(64, 64))
    x, y = sample.val.x[:256], sample.val.y[:256]
    first, second = net.eval_step(x, y, net.stages()[0])[0], net.eval_step(x, y, net.stages()[0])[0]
    assert first.item() == second.item()


# ------------------------------------------------------------------ FF as the study ran it

def test_ff_study_options_straight_through_relu_and_half_scaled_loss():
    torch.manual_seed(0)
    x, y = torch.randn(6, *SHAPE), torch.randint(0, 3, (6,))
    plain = ff.ForwardForward(SHAPE, 3, hidden=(5, 5))
    study = ff.ForwardForward(SHAPE, 3, hidden=(5, 5), relu="straight-through", loss_average="sample")
    study.load_state_dict(plain.state_dict())
    g = torch.Generator().manual_seed(1)
    pair_losses = plain.ff_losses(x, y, generator=torch.Generator().manual_seed(1))
    sample_losses = study.ff_losses(x, y, generator=g)
    for a, b in zip(pair_losses, sample_losses):          # BCE over 2B samples = half the pair mean
        torch.testing.assert_close(b, a / 2)
    z = torch.randn(4, 3, requires_grad=True)
    ff.StraightThroughReLU.apply(z).sum().backward()
    assert torch.equal(ff.StraightThroughReLU.apply(z.detach()), z.detach().relu())
    assert torch.equal(z.grad, torch.ones_like(z))          # the gradient ignores the ReLU's mask
    with pytest.raises(ValueError, match="relu"):
        ff.ForwardForward(SHAPE, 3, hidden=(5, 5), relu="gelu")


def test_ff_peer_norm_starts_at_peer_init_and_moves_towards_the_batch_mean():
    torch.manual_seed(0)
    net = ff.ForwardForward(SHAPE, 3, hidden=(5, 5), peer_norm=0.03, peer_init=0.5)
    assert torch.equal(net.mean_activity0, torch.full((5,), 0.5))
    x, y = torch.randn(6, *SHAPE), torch.randint(0, 3, (6,))
    h = net.activities(ff.embed_label(x, y, 3))[0].detach()
    without = ff.ForwardForward(SHAPE, 3, hidden=(5, 5))
    without.load_state_dict({k: v for k, v in net.state_dict().items()})
    g = torch.Generator().manual_seed(3)
    losses = net.ff_losses(x, y, update_stats=True, generator=g)
    expected_mean = 0.9 * 0.5 + 0.1 * h.mean(0)
    torch.testing.assert_close(net.mean_activity0, expected_mean)
    peer = (expected_mean - expected_mean.mean()).pow(2).mean()
    base = without.ff_losses(x, y, generator=torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(losses[0], base + 0.03 * peer)


def test_ff_lr_cooldown_falls_linearly_over_the_second_half(sample):
    net = algorithms.build("ff", input_shape=sample.input_shape, num_classes=10, hidden=(16, 16),
                           lr=1e-3, head_lr=1e-2, lr_cooldown=True)
    seen = []
    net.begin_epoch = (lambda original: lambda stage, e, n: (original(stage, e, n), seen.append(
        (net.optimizer.param_groups[0]["lr"], net.head_optimizer.param_groups[0]["lr"]))))(net.begin_epoch)
    small = copy.copy(sample)
    small.train = sample.train.__class__(sample.train.x[:64], sample.train.y[:64])
    from fwdlib.train import fit
    fit(net, small, epochs=6, batch_size=64, progress=False)
    factors = [lr / 1e-3 for lr, _ in seen]                  # E = 6: epochs 0-3 (0-based) full, then 2*(1+6-e)/6
    assert factors == pytest.approx([1, 1, 1, 1, 2 * 3 / 6, 2 * 2 / 6])
    assert [h / 1e-2 for _, h in seen] == pytest.approx(factors)


def test_ff_predicting_by_goodness_trains_no_head():
    torch.manual_seed(0)
    net = ff.ForwardForward(SHAPE, 3, hidden=(5, 5), prediction="goodness")
    head = copy.deepcopy(net.head.state_dict())
    net.train_step(torch.randn(6, *SHAPE), torch.randint(0, 3, (6,)), net.stages()[0])
    assert all(torch.equal(head[k], v) for k, v in net.head.state_dict().items())


def test_optimizers_are_found_in_lists_and_fused_by_default():
    net = ff.ForwardForward(SHAPE, 3, hidden=(5, 5))
    assert net.optimizers() == [net.optimizer, net.head_optimizer]
    net.extra = [torch.optim.SGD(net.head.parameters(), lr=0.1)]
    assert net.extra[0] in net.optimizers()
    from fwdlib.algorithms.base import implementation_of, make_optimizer
    assert implementation_of(net.optimizer) == "fused"
    params = [torch.nn.Parameter(torch.randn(3))]
    assert implementation_of(make_optimizer(params, "sgd", 0.1, 0.0, implementation="foreach")) == "foreach"
    with pytest.raises(ValueError, match="implementation"):
        make_optimizer(params, "adamw", 0.1, 0.0, implementation="fast")


def _fused_on_cpu(kind: str) -> bool:
    """Whether this torch has a fused CPU kernel for `kind` (AdamW from 2.4, SGD from 2.5)."""
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.SGD
    try:
        cls([torch.nn.Parameter(torch.zeros(1))], lr=0.1, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_fused_and_foreach_optimizers_take_the_same_steps(kind):
    if not _fused_on_cpu(kind):
        pytest.skip(f"torch {torch.__version__} has no fused CPU {kind}: make_optimizer falls back to foreach")
    from fwdlib.algorithms.base import implementation_of, make_optimizer
    torch.manual_seed(0)
    a = algorithms.build("bp-mlp", input_shape=SHAPE, num_classes=3, hidden=(7,), optimizer=kind)
    b = copy.deepcopy(a)
    b.optimizer = make_optimizer(b.parameters(), kind, 1e-3, 1e-4, implementation="foreach")
    assert (implementation_of(a.optimizer), implementation_of(b.optimizer)) == ("fused", "foreach")
    x, y = torch.randn(6, *SHAPE), torch.randint(0, 3, (6,))
    for _ in range(3):
        a.train_step(x, y, a.stages()[0])
        b.train_step(x, y, b.stages()[0])
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_mf_he_uniform_init_is_the_studys():
    torch.manual_seed(0)
    net = mf.MonoForward((1, 30, 30), 3, hidden=(400, 400), init="he-uniform")
    bound = (6 / 900) ** 0.5
    w = net.layers[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound and net.layers[0].bias.abs().sum() == 0
    assert net.projections[0].abs().max() <= 400 ** -0.5


def test_feedback_alignment_is_the_angle_between_dfa_and_backprop_signals():
    torch.manual_seed(0)
    net = algorithms.build("cafo-dfa", input_shape=(1, 8, 8), num_classes=3, channels=(2, 3, 4))
    x, y = torch.randn(5, 1, 8, 8), torch.randint(0, 3, (5,))
    angles = net.feedback_alignment(x, y)
    assert len(angles) == 3 and all(0 <= a <= 180 for a in angles)
    # make the last feedback matrix equal to the head's weights: then DFA's signal is backprop's
    net.feedback2.copy_(net.dfa_head.weight.detach())
    assert net.feedback_alignment(x, y)[2] == pytest.approx(0.0, abs=0.1)       # acos is coarse near 0
    net.feedback2.mul_(-1)                                  # and pointing the other way: 180 degrees
    assert net.feedback_alignment(x, y)[2] == pytest.approx(180.0, abs=0.1)
