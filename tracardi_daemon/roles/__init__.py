"""The roles the supervisor runs: upgrade, segmentation, mapping, scheduler, trigger,
and the internal dispatch senders that start with the roles handing off deliveries."""
