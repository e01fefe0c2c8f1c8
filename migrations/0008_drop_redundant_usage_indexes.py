"""Single-column indexes that a composite index already leads with: usage_record's provider and
outcome ((provider, created_at), (outcome, created_at)) and usage_tag's request_id and tag
(unique (request_id, tag), (tag, request_id)). Every usage row paid for four more index
updates than its queries use.

Tortoise's AlterField rebuilds the whole table on SQLite to drop a field's index; on a usage
history of millions of rows that is a long, locked, disk-hungry upgrade. ``DropFieldIndex``
moves the migration state exactly as AlterField does and drops the index by the name Tortoise
gave it (the same on SQLite and PostgreSQL)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class DropFieldIndex(ops.AlterField):
    def __init__(self, model_name, name, field, *, table, index):
        super().__init__(model_name, name, field)
        self.table = table
        self.index = index

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor:
            await state_editor._run_sql(f'DROP INDEX IF EXISTS "{self.index}"')

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor:
            await state_editor._run_sql(
                f'CREATE INDEX IF NOT EXISTS "{self.index}" ON "{self.table}" ("{self.name}")'
            )


class Migration(migrations.Migration):
    dependencies = [('relay', '0007_usage_daily')]

    initial = False

    operations = [
        DropFieldIndex(model_name=model, name=name, field=field, table=table, index=index)
        for model, table, name, field, index in (
            ('UsageRecord', 'usage_record', 'outcome', fields.CharField(max_length=32), 'idx_usage_recor_outcome_b20dde'),
            (
                'UsageRecord', 'usage_record', 'provider', fields.CharField(null=True, max_length=64),
                'idx_usage_recor_provide_345622',
            ),
            ('UsageTag', 'usage_tag', 'request_id', fields.CharField(max_length=64), 'idx_usage_tag_request_13b37a'),
            ('UsageTag', 'usage_tag', 'tag', fields.CharField(max_length=64), 'idx_usage_tag_tag_96b7ec'),
        )
    ]
