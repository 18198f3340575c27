"""Training data: synthetic scenes, labelled datasets, unlabeled images, the pseudo labels."""
