"""Qt-free core: data, augmentation, models, methods, training, embeddings, projections, evaluation, runs."""
