"""Networks and losses: image backbone, Dx head, digitization heads, losses, the multi-head model."""
