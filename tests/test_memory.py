"""Training memory: every saved tensor counted once, released tensors no longer counted, and the
BP twin's activations equal to the textbook count."""
import torch
import torch.nn.functional as F

from fwdlib import algorithms
from fwdlib.meters.memory import SavedTensors, step_memory


def test_a_tensor_saved_twice_counts_once_and_released_tensors_leave():
    w = torch.randn(64, 64, requires_grad=True)
    x = torch.randn(32, 64)
    with SavedTensors(exclude=[w]) as saved:
        h = F.relu(x @ w)             # relu saves its output; the next matmul saves it again
        loss = (h @ w).sum()
        assert saved.live == (32 * 64 + 32 * 64) * 4      # x and h, once each; w is excluded
        loss.backward()
        del h, loss
    assert saved.peak == (32 * 64 + 32 * 64) * 4 and saved.live == 0


def test_the_bp_twins_saved_activations_match_the_textbook_count():
    batch, hidden = 128, (1000, 1000)
    net = algorithms.build("bp-mlp", input_shape=(1, 28, 28), num_classes=10, hidden=hidden)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    with SavedTensors(exclude=[*net.parameters(), *net.buffers()]) as saved:
        net.train_step(x, y, net.stages()[0])
    memory = step_memory(net, saved)
    # each Linear's input, each ReLU's output being the next Linear's input (one tensor, not two)
    textbook = batch * (784 + sum(hidden)) * 4
    assert textbook <= memory.saved_for_backward <= textbook + batch * 10 * 4 + batch * 8 + 64   # + CE's own
    params = sum(p.numel() for p in net.parameters()) * 4
    assert memory.parameters == params and memory.gradients == params
    assert memory.optimizer_state >= 2 * params           # AdamW: two moments per parameter
