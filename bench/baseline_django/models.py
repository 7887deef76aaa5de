from django.db import models


class RawMessage(models.Model):
    received_at = models.DateTimeField(auto_now_add=True)
    raw = models.BinaryField()
