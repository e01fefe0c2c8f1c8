from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('relay', '0003_cost_engine')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CustomProvider',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('api', fields.CharField(max_length=16)),
                ('base_url', fields.CharField(max_length=500)),
                ('api_key_env', fields.CharField(null=True, max_length=128)),
                ('api_key_file', fields.CharField(null=True, max_length=500)),
                ('models', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'custom_provider', 'app': 'relay', 'pk_attr': 'name', 'table_description': 'An OpenAI- or Anthropic-compatible endpoint added in the admin UI. The key itself is never'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ModelSetting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('provider', fields.CharField(max_length=64)),
                ('model', fields.CharField(max_length=255)),
                ('enabled', fields.BooleanField(default=True)),
                ('supports_vision', fields.BooleanField(null=True)),
                ('supports_reasoning', fields.BooleanField(null=True)),
                ('supports_tools', fields.BooleanField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'model_setting', 'app': 'relay', 'unique_together': (('provider', 'model'),), 'pk_attr': 'id', 'table_description': 'Per-model switches an admin sets: enabled, and capabilities the catalog gets wrong.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OllamaInstance',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('base_url', fields.CharField(max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ollama_instance', 'app': 'relay', 'pk_attr': 'name', 'table_description': 'An Ollama server added in the admin UI (those in OLLAMA_INSTANCES are not stored).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RelaySetting',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('value', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'relay_setting', 'app': 'relay', 'pk_attr': 'key', 'table_description': 'A setting changed at run time (default model, retention, ...), stored as {"value": ...}.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='UsageRecord',
            name='client_host',
            field=fields.CharField(null=True, db_default=None, max_length=255),
        ),
    ]
