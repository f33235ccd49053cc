"""Training data: SFT and reflection examples, reward and preference examples, and datasets built from
evaluation results (ORM labels, pass-vs-fail pairs, rejection-sampled SFT).

    from raylib.train.data import IGNORE      # -100: the label of a token the loss skips (every module's one value)
"""

__all__ = ["IGNORE"]

IGNORE = -100  # label of a token the loss skips (torch's cross-entropy ignore_index)
