"""Encoder adaptation: end-to-end fine-tuning (finetune, module) and SimCSE (simcse), sharing the helpers in common."""
