"""What runs a network: the initialisation probe, training plans and the trainer."""
