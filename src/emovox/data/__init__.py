"""Data: corpus recipes, the manifest they produce, label schemes, the emotion taxonomy and
the speaker-independent fold plans (protocols). Nothing here reads audio samples."""
