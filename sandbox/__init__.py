"""The local CXone sandbox: a faithful fake of the NICE CXone endpoints the client calls, as a
plain ASGI app served by uvicorn (``dnc-sync sandbox --port 8090``).

Emulated, adapter 1 (CXone Admin API, public contract; developer.niceincontact.com):

- ``GET /.well-known/openid-configuration`` (issuer = ``http://<Host>``, token endpoint);
- ``GET /.well-known/cxone-configuration?tenantId=`` (``api_endpoint`` = this sandbox);
- ``POST /auth/token``: password grant, access key id/secret as username/password, the
  application's client id/secret in HTTP Basic; an ``access_token`` and ``id_token`` JWT;
- ``POST|DELETE|GET /inContactAPI/services/vNN.0/dnc-groups/{groupId}/records``: add
  (opt-out), expire (opt-in), with per-record results in a 200; list/search with ``skip``,
  ``top``, ``orderBy``, ``fields``, ``phoneNumber`` and ``totalRecords`` (the shape partly
  assumed: ``sandbox.dnc_listing``).

Emulated, adapter 2 (outbound contacts, the original design's contract):
``POST /oauth/token`` (client credentials, JSON body) and
``POST|GET /api/v2/outbound/contacts`` (all-or-nothing batches, 409 on a conflict).

Shared: latency, a token-bucket rate limit (429 with Retry-After as seconds, an HTTP date or
none), random 500/502/503, hangs answered 504, lost replies (a write applied, then its answer
lost: a hang and a 504, the timeout that matters), slow DNC-group DELETEs (``delete_latency_ms``:
the expiry is applied that long after the request arrived, even when the client gave up
meanwhile, so an abandoned opt-in lands late), numbers that always fail, a seed, and the
token lifetime, set at start (``DNC_SANDBOX_*``) or at run time (``POST /_sandbox/faults``);
the unauthenticated control API ``/_sandbox/state``, ``/_sandbox/journal``,
``/_sandbox/reset``, ``/_sandbox/faults``, ``/_sandbox/dnc-groups/{groupId}/records``
(out-of-band changes, as a CXone admin would make; not journaled) and ``/healthz``. State
is in memory, per process.

The write journal (``sandbox.journal``, ``GET /_sandbox/journal?after=<seq>``): every DNC-group
record and outbound contact written, in order, with a sequence number, the sandbox time (ms),
the number as stored, the action, the expiry asked, whether the state changed and the event
time (ms) the client's ``X-Dnc-Sync-Trace`` header says the write stood for (the chaos
suites' history checker, ``reliability/faults/history.py``, reads it).

Assumed where the real contract is not public:

- the per-record error texts (``sandbox.dnc_groups``: ``ALREADY_EXISTS``, ``DOES_NOT_EXIST``,
  ``INVALID_PHONE``, ``TEMPORARY_FAILURE``, ``INVALID_EXPIRED_DATE``) and which checks CXone
  makes; a phone number is 7-15 digits, formatting characters ``+ - ( ) .`` and spaces are
  dropped (``formattedPhone``); an ``expiredDate`` must be a future ISO 8601 time;
- adding a number already active is a per-record failure, not an update; expiring is "now";
- bearer tokens are checked only by this sandbox's memory of what it issued (tokens are JWTs
  signed HS256 with a per-process key; nothing verifies the signature); a token from one
  adapter's endpoint is refused by the other adapter's API;
- ``inContactAPI`` in paths is matched case-insensitively; any ``vNN.0`` is accepted;
- ``/auth/token`` grants only ``password`` although the discovery document also lists
  ``client_credentials`` (as CXone's does); HTTP Basic values are accepted as sent or
  form-encoded (RFC 6749 §2.3.1);
- the whole outbound contacts contract (``sandbox.contacts``), including 503 for a batch
  holding a failing number and 400 for a number given twice in one batch;
- discovery documents, the control API and ``/healthz`` get no latency or faults;
- real CXone ignores request headers it does not know, so ``X-Dnc-Sync-Trace`` changes nothing
  there; the client sends it only with ``DNC_CXONE_SEND_TRACE=true`` (off by default, for test
  stacks only), and the sandbox only reads it into the journal (absent or unreadable: the
  event is unknown).

Modules: ``settings`` (``SandboxSettings``, ``FaultConfig``), ``state`` (records, contacts,
tokens, counters), ``faults`` (latency, rate limit, injected errors), ``http`` (request and
response shapes), ``journal`` (the write journal and the trace header), ``tokens``,
``dnc_groups`` (DNC-group writes), ``dnc_listing`` (DNC-group listing and search),
``contacts``, ``control`` (the endpoints), ``dnc_records`` (what the DNC-group endpoints
share: the group named, phone numbers and expiries read), ``context`` (``Sandbox``), ``app``
(routing, ASGI), ``main`` (the factory), ``cli`` (the command). Imports only
``receiver.asgi`` and ``dnc.settings.split_list`` of ours (never the client under test);
never Prefect.
"""
