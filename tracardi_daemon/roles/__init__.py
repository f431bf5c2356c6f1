"""The roles the supervisor runs: upgrade, segmentation, mapping, scheduler, trigger."""
