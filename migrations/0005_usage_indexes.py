from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('relay', '0004_admin')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='UsageRecord',
            index=Index(fields=['provider', 'created_at']),
        ),
        ops.AddIndex(
            model_name='UsageRecord',
            index=Index(fields=['resolved_model', 'created_at']),
        ),
        ops.AddIndex(
            model_name='UsageRecord',
            index=Index(fields=['outcome', 'created_at']),
        ),
        ops.AddIndex(
            model_name='UsageTag',
            index=Index(fields=['tag', 'request_id']),
        ),
    ]
