"""Self-checks of written answers: multiple choice, each wrong option with why it is wrong."""
from __future__ import annotations

from ...coordination import GRACE_S
from ...coordination import MAX_ATTEMPTS
from ...bench.study import STUDY
from .engine import Result, verdict

_FF, _FF_TWIN = STUDY[("fashion_mnist", "ff")], STUDY[("fashion_mnist", "bp-mlp@ff")]


# exercise -> (question, {option: text}, right option, why, {wrong option: what it misses})
QUIZZES = {
    "0.2": ("Timed without torch.cuda.synchronize(), a GPU training step looks far faster than it is. Why?",
            {"a": "time.perf_counter() is too coarse to resolve a GPU step",
             "b": "a CUDA call returns once its kernel is queued, so the clock stops before the GPU has done the work",
             "c": "without synchronize the GPU skips the kernels whose results are never read",
             "d": "synchronize() excludes the first step's warm-up (CUDA initialisation, allocation), which "
                  "otherwise inflates the time"}, "b",
            "kernel launches are asynchronous: Python runs ahead while the GPU works through its queue, and "
            "torch.cuda.synchronize() waits until that queue is empty, so only then does the clock cover the work",
            {"a": "perf_counter resolves well below a microsecond; the missing part is milliseconds of queued work",
             "c": "every queued kernel runs, read or not; the naive clock simply stops before they have run",
             "d": "warm-up makes a first timing too LONG, not too short, and synchronize() only waits: it excludes "
                  "nothing (a warm-up call before timing handles that)"}),
    "1.4": ("How often does a shuffled label equal the true one, with 10 balanced classes?",
            {"a": "never", "b": "about 10% of the time", "c": "about 50% of the time"}, "b",
            "a random permutation hands each sample another sample's label, which matches its own with probability about 1/C",
            {"a": "a permutation does not avoid equal labels: two samples of the same class swap labels freely",
             "c": "that would need two classes; with C classes a match has probability about 1/C"}),
    "1.5": (f"Why did the study's FF need {_FF.epochs} epochs on average where its BP twin needed {_FF_TWIN.epochs}?",
            {"a": "each layer learns only from its own local goodness loss, so class information builds up slowly",
             "b": "FF's loss has no minimum, so it never stops on its own",
             "c": "FF sees fewer images per epoch than BP"}, "a",
            "every FF layer improves its own real-versus-fake judgement; no error from the output reaches it",
            {"b": "the softplus loss has an infimum it never reaches, but early stopping on validation accuracy "
                  "ends the run all the same",
             "c": "both see every training image once per epoch (FF even twice, positive and negative)"}),
    "2.4": ("Without the detach and with all layer losses summed, what trains layer 1?",
            {"a": "layer 1's own loss only", "b": "the losses of layer 1 and of every layer above it",
             "c": "no loss at all"}, "b",
            "the gradient of layer 2's loss would flow through layer 1's output into its weights: backprop again",
            {"a": "that is what the detach guarantees; without it the losses above reach layer 1 too",
             "c": "layer 1's own loss always reaches it"}),
    "3.4": ("Features normalised with batch statistics in training, running statistics at test: what is wrong?",
            {"a": "the predictor sees features with a different scale and offset at test time",
             "b": "the random weights change between training and test", "c": "ridge regression overfits"}, "a",
            "in eval mode BatchNorm normalises with its running averages of earlier batches (momentum 0.1), not "
            "with each batch's own statistics the predictor was trained on",
            {"b": "the blocks are frozen: their weights do not change",
             "c": "the accuracy drop comes from the shift in the features, not from the predictor's capacity"}),
    "3.6": ("When lambda grows very large, what happens to the ridge predictor?",
            {"a": "W shrinks towards 0 and the scores stop depending on the features: accuracy falls",
             "b": "W grows and overfits the training set", "c": "nothing: lambda only speeds up the solve"}, "a",
            "lambda penalises the size of W; past the scale of H^T H it dominates and W is pulled to 0",
            {"b": "large lambda shrinks W; overfitting is the small-lambda end",
             "c": "lambda changes the solution itself, not only how it is computed"}),
    "4.4": ("Which GEMMs does MF skip that BP needs?",
            {"a": "the forward GEMMs", "b": "the weight-gradient GEMMs", "c": "the input-gradient GEMMs"}, "c",
            "each layer's input is detached, so no gradient flows from a layer to the one below",
            {"a": "MF runs the same forward pass as BP", "b": "MF still needs every weight's gradient"}),
    "4.5": ("Your wider MF layers: what explains the change in validation accuracy you measured?",
            {"a": "a wider layer's projection M_i sees more features, so each local classifier can be more accurate",
             "b": "width does not matter for MF because every layer is trained locally",
             "c": "wider layers let the error of the last layer reach the first"}, "a",
            "a layer's own class scores a_i M_i^T are a linear classifier on its activity: more units, more capacity",
            {"b": "local training does not remove the capacity of each layer's classifier",
             "c": "no gradient crosses a layer at any width: each layer's input is detached"}),
    "5.4": ("Which memory figure belongs in a comparison of two algorithms on one GPU?",
            {"a": "NVML's device-wide used memory", "b": "the allocator's peak after resetting it",
             "c": "the process's resident set size"}, "b",
            "torch.cuda.max_memory_allocated measures the algorithm's tensors; NVML adds the context and other processes",
            {"a": "it includes the CUDA context (about 800 MiB in the study's 2026 revision, its Section 3) and the "
                  "caching allocator's spare blocks",
             "c": "RSS counts host memory, not the GPU's"}),
    "6.4": ("Three runs that share one seed: what do they measure?",
            {"a": "seed-to-seed variation", "b": "one outcome, repeated (plus nondeterminism)",
             "c": "nothing: they are invalid"}, "b",
            "the same seed gives the same initialisation and data order, so their spread says nothing about other seeds",
            {"a": "seed-to-seed variation needs different seeds",
             "c": "they are a valid single measurement, just not three independent ones"}),
    "6.7": ("Which claim of arXiv v1 about MF does the authors' 2026 revision reverse, and what reversed it?",
            {"a": "MF's accuracy lead: with 20 seeds instead of 3 it vanishes on CIFAR-10",
             "b": "MF's '41% less energy, 34% faster': with one stopping rule for every algorithm MF takes about "
                  "4x BP's time and 3.2x its energy on CIFAR-10",
             "c": "MF's memory advantage: read from the allocator per process, it disappears on CIFAR-10"}, "b",
            "on the CIFAR-10 row v1 stopped MF per layer on its local loss (patience 4) and BP on validation loss "
            "(patience 20, lesson 06 section 1); time "
            "and energy are integrals over training, so the rule decided the comparison (rerun under v1's rules "
            "over three seeds, the savings come back); under one rule MF takes 1002 s against 253 s",
            {"a": "MF leads by more in the revision, 66.37 against 62.47% over 20 seeds; that lead comes with the "
                  "longer training one rule allows, not from v1's three shared-seed runs",
             "c": "the revision measured 216.8 against 299.0 MiB per process on CIFAR-10: 27% less, more than "
                  "v1's 'approximately 5%'"}),
    "7.1": ("The workers of lesson 07 finished their study. You run them again with the same SEEDS, then with "
            "SEEDS raised from 8 to 12: what runs?",
            {"a": "nothing the first time, since every unit is done and the study stores each unit once; then only the "
                  "units of seeds 8 to 11, while --status keeps showing the first eight as done",
             "b": "every unit again the first time, its records stored beside the first ones: twice the runs, "
                  "so the intervals narrow",
             "c": "the raised SEEDS is refused: a study's plan is fixed when its first worker creates it",
             "d": "all 12 seeds from the start: a changed plan invalidates the units stored under the old one"}, "a",
            "a worker adds to the study only the units it lacks (more seeds) and never touches a stored one; a unit "
            "is claimed only while planned (or silent past the grace period), so a done study has nothing to claim",
            {"b": "a unit is stored once (the first finisher wins), and a second run of the same seed repeats one "
                  "outcome (quiz 6.4): it would narrow nothing honestly",
             "c": "the seeds are not part of the plan the workers must agree on: --seeds adds units; other settings, "
                  "such as another --epochs, are what the study refuses",
             "d": "the units the study holds are never touched; only the units of the new seeds are added"}),
    "7.2": ("A worker falls silent while it trains a unit of the class's study on its database server: its "
            "process is killed, or its laptop's lid is shut. What happens to that unit?",
            {"a": "it goes back to planned at once: the database notices that its worker died",
             "b": "it is marked failed, and the study ends one seed short",
             "c": f"--status shows it running under that worker, its heartbeat ever older; once the heartbeat has "
                  f"been silent past the grace period (--grace, {GRACE_S:g} s by default) the next worker that "
                  "looks for work claims it and runs the whole unit again (attempt 2)",
             "d": "another worker resumes the silent worker's training from its last finished epoch"}, "c",
            "a database cannot tell a dead worker from a slow one: only the heartbeat's silence says so, and the "
            "grace period decides when it has lasted long enough; the reclaimed unit runs whole, on one machine, so "
            "its pair is still measured back to back",
            {"a": "a database server sees no process die; only a worker that stops itself (Ctrl-C) gives its unit "
                  "back at once (in an SQLite study on one machine the next worker also sees a killed process gone; "
                  "a shut lid or a lost network still looks alive)",
             "b": f"failed means a run raised, or that {MAX_ATTEMPTS} workers in a row fell silent on the unit; "
                  "one silent worker only delays it",
             "d": "a unit's runs are never resumed by another machine: the pair runs whole, back to back on one "
                  "machine, so that its ratios are measured within that machine"}),
    "8.4": ("fg trained with less memory than its backprop twin with the same hidden layers. What does the "
            "saving rest on, and how could a backprop twin approach it with exact gradients?",
            {"a": "fg has fewer parameters than its twin; a twin with narrower layers would match it",
             "b": "backprop keeps every layer's activations until its backward pass reaches them; fg has no "
                  "backward pass, and under its local losses each layer's values are dropped once the next layer "
                  "has them; a twin with activation checkpointing keeps only some activations and computes the "
                  "rest again (a second forward), and one with local losses (MF, lesson 04) keeps one layer's",
             "c": "forward mode stores its activations in lower precision; a twin in float16 would match it",
             "d": "fg's optimizer keeps no state; a twin trained with plain SGD would match it"}, "b",
            "the saving is what a backward pass needs kept: fg has none to feed and its local losses end each "
            "layer's use of its values at the next layer; backprop can buy much of it back with checkpointing, "
            "paying a second forward, or with local losses, paying end-to-end credit assignment",
            {"a": "the local heads give fg slightly MORE parameters than its twin, whose one head it replaces with "
                  "one per layer",
             "c": "every tensor here is float32, on both sides: the saving is what is kept, not how it is stored",
             "d": "fg and its twin both train with AdamW, whose two moments per parameter are the same for both"}),
}


def quiz(exercise: str, answer) -> Result:
    """The multiple-choice self-check of a written answer: pass the option's letter."""
    question, options, right, why, wrong = QUIZZES[exercise]
    print(f"Self-check {exercise}: {question}\n" + "\n".join(f"  ({k}) {v}" for k, v in options.items()))
    if answer is Ellipsis or answer is None:
        print(f"Exercise {exercise} not attempted yet: set your answer to one of {', '.join(options)}")
        return verdict(f"{exercise} quiz", False)
    answer = str(answer).strip().lower().strip("()")
    if answer not in options:
        print(f"✗ Exercise {exercise}: answer with one of {', '.join(options)}, got {answer!r}")
        return verdict(f"{exercise} quiz", False)
    if answer != right:
        print(f"✗ Exercise {exercise}: not ({answer}): {wrong[answer]}. Think again.")
        return verdict(f"{exercise} quiz", False)
    print(f"✓ Exercise {exercise}: ({right}) — {why}.")
    return verdict(f"{exercise} quiz", True)
