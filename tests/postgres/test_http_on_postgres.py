"""The data plane's HTTP tests, with the real qdrant-client, against a real Bastion whose
``BASTION_DATABASE_URL`` is PostgreSQL: the pgvector engine behind the same routes.

The test bodies are the embedded engine's own (named here, in their order, so they run
here too); only ``live_server`` differs.
"""

from __future__ import annotations

import pytest

from tests.dataplane import test_export_and_audit as audit
from tests.dataplane import test_http as http

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Auth token provider is used with an insecure connection"),
]


data, dev, loaded = http.data, http.dev, http.loaded
test_ingest_count_and_info = http.test_ingest_count_and_info
test_query_with_and_without_filter = http.test_query_with_and_without_filter
test_scroll_through_everything = http.test_scroll_through_everything
test_delete_by_ids_and_filter = http.test_delete_by_ids_and_filter
test_api_key_reads_and_viewer_cannot_write = http.test_api_key_reads_and_viewer_cannot_write
test_other_tenant_collections_are_invisible = http.test_other_tenant_collections_are_invisible
test_collection_narrowed_service_account = http.test_collection_narrowed_service_account
test_bad_input_is_4xx_in_qdrant_envelope = http.test_bad_input_is_4xx_in_qdrant_envelope
test_concurrent_searches_over_http_match_one_at_a_time = (
    http.test_concurrent_searches_over_http_match_one_at_a_time
)
collection = audit.collection
test_export_needs_admin_at_aal3_and_is_audited = (
    audit.test_export_needs_admin_at_aal3_and_is_audited
)
test_writes_and_searches_are_audited = audit.test_writes_and_searches_are_audited
