"""The AMQP side of the gateway: SEND → RabbitMQ with a confirm, RabbitMQ → sessions.

Design
======

One :class:`Relay` per gateway node, in three parts: the *planner* (:mod:`.planner`, pure:
a SUBSCRIBE or a SEND, its headers, ack mode and user become a frozen plan: which queue to
declare with which arguments, what to check, what to bind to what, node fan-out or a
consumer of its own, the prefetch, and the plan's *authority*: every queue it uses by name,
every dead-letter target, the queue arguments it declares), the *topology* (:mod:`.topology`:
the declares, checks, binds and deletes a plan asks for) and the orchestration
(:mod:`.relay`: has the caller's ``authorize`` decide the plan's authority, then runs the
plans, owns the connections, the fan-out, the consumer pool and the publisher, and keeps a
:class:`~gateway.relay.relay.ClientRecord` of each client's subscriptions and temp queues).
Durable subscriptions are recorded and counted per user in Redis (:mod:`.durable`).
The collaborators get what they call back through their constructors.

The relay holds **two AMQP connections** and many channels on them, never a connection per
session (a node opens more consume connections only when its clients' channels would fill
one: see *Isolation*). The *wire* (:mod:`.wire`, a lean AMQP client
that handles each frame inside ``data_received``: no task, queue or loop turn per frame)
carries the two hot streams, confirmed publishes and the fan-out queue, so a confirm and
the delivery of the same message often arrive in one read. The other connection (aiormq)
does everything else: own consumers, declares, passive checks.

* **Publishing** (:mod:`.publisher`): channels in confirm mode: one *topic channel* for
  ``amq.topic`` (which also consumes the fan-out queue), ``publish_channels`` more for the
  default exchange (``/queue/``, ``/reply-queue/``; one per session lane, so a session's
  SENDs keep their order), one channel per other exchange (``/exchange/<name>``, the user
  exchange), and one for ``mandatory`` publishes. :meth:`Relay.publish` returns only after
  the broker's confirm, or, with ``on_confirm``, as soon as the message is written, the
  outcome following through the callback; a nack, an unroutable ``mandatory`` publish, a
  closed channel, a lost connection or no confirm within ``confirm_timeout`` are a
  :class:`PublishError` (never a silent success). Messages are persistent (delivery mode 2)
  unless the SEND says ``persistent:false``.
* **Edge fan-out** (:mod:`.fanout`, :mod:`.matcher`): the node owns ONE exclusive queue
  ``stompgate.node.<node_id>.<random>``, consumed once without acks and bound to
  ``amq.topic`` with the union of the topic keys/patterns its sessions subscribe to (plus the
  user exchange for ``/user/queue/`` subscriptions of local users). Bindings are
  reference-counted: bound for the first local subscriber, unbound after the last. Each
  broker delivery becomes ONE :class:`gateway.stomp.PreparedMessage`, matched locally with a
  trie and handed to every matching subscription. A room of 1,000 members on 4 nodes costs
  the broker 4 deliveries. Used for ``/topic/`` (and ``/exchange/amq.topic/``) with
  ``ack:auto`` and not durable, and for ``/user/queue/`` with ``ack:auto``.
* **Own consumers** (:mod:`.consumers`, :mod:`.channels`): everything else (``/queue/``,
  ``/amq/queue/``, ``/reply-queue/``, ``/exchange/``, durable subscriptions, temp queues,
  streams, and any ``client``/``client-individual`` subscription) gets a consumer of its own
  on **its client's own channel**, with ``prefetch-count`` (default ``default_prefetch``) as
  its own prefetch. ACK/NACK map to ``basic.ack``/``basic.nack`` (cumulative for
  ``client``, single for ``client-individual``), without ever settling another
  subscription's messages.
* Declares, binds and passive checks the broker may refuse run on throw-away channels
  (:mod:`.topology`; on the connection of the client's channel, which owns the exclusive
  queues it declares), so a refusal (``PRECONDITION_FAILED``, ``NOT_FOUND``,
  ``ACCESS_REFUSED``...) ends that one request: the topology raises it as one neutral
  :class:`~gateway.relay.errors.BrokerRefusedError` (text and AMQP code), which the relay
  turns into a clear :class:`SubscribeError`/:class:`PublishError` for that session and
  nobody else.

Isolation
=========

No client can close a connection or a channel the node shares (:mod:`.broker_rules` lists
every AMQP method a client's frame causes and what the broker refuses):

* what the broker would answer with a *connection* error (a NACK on a stream, an
  ``x-stream-offset``, ``x-max-age`` or ``x-queue-master-locator`` it cannot parse, message
  properties over one frame), or with a channel error on a shared publish channel (an
  ``expiration`` over 2^32-1 ms, ``CC``/``BCC`` headers, a body over ``max_message_size``),
  is refused before it is sent, with a
  :class:`~gateway.relay.errors.BrokerRuleError` (``message`` as RabbitMQ's STOMP plugin
  says it: ``not_implemented``, ``precondition_failed``, ``Invalid header``...);
* each client's consumers run on a channel of that client's own (:mod:`.channels`: opened
  with its first consumer, closed with its last one and at :meth:`Relay.detach`), so what
  the broker can still refuse there reaches that client only; if the broker closes it
  anyway, its consumers are restored on a new one. A consume connection takes at most
  ``client_channels_per_connection`` client channels (0: as many as ``channel_max`` leaves
  beside the topology's throw-away channels); past that the node opens
  ``stompgate <node> consume-<n>``, and closes it when its last channel closes;
* a publish to a named exchange has that exchange's channel to itself: a refusal the
  relay cannot foresee (the exchange was deleted since it was checked, or is internal)
  fails only publishes to that exchange;
* only delivery tags a channel holds unsettled are ever acked or nacked (an ACK of an
  unknown or settled id is ignored), and deliveries from a stream are never nacked: on
  UNSUBSCRIBE or disconnect, unacked messages of classic and quorum queues are requeued,
  those of a stream are left to the closing channel.

Streams: a SUBSCRIBE to a stream (``/queue/<name>`` with ``x-queue-type: stream``, or an
existing one through ``/amq/queue/``) may carry ``x-stream-offset`` (``first``, ``last``,
``next``, ``offset:<n>``, ``timestamp:<seconds>``, as RabbitMQ's plugin reads it; ``=`` is
taken for ``:``) and needs a ``prefetch-count`` of 1 or more (the default is
``default_prefetch``). Each MESSAGE carries ``x-stream-offset:<n>``, the header RabbitMQ puts
on the delivery. ACKs work as for a queue; a NACK is refused with an ERROR; ``ack:auto``
works (the relay acks; RabbitMQ refuses automatic acks on a stream).

Destinations (:mod:`.destinations`; names and MESSAGE ``destination`` headers as RabbitMQ's
STOMP plugin has them, so both kinds of clients see the same messages)
====================================================================================

==========================  ======================================  ==========================
destination                 SEND                                    SUBSCRIBE
==========================  ======================================  ==========================
``/topic/<key>``            ``amq.topic``, key                      node fan-out (``auto``);
                                                                    own exclusive queue bound
                                                                    to ``amq.topic`` (client
                                                                    ack); durable queue
                                                                    (durable subscription)
``/queue/<name>``           declare durable queue ``name`` (once;   declare the queue, consume
                            x- headers as arguments), then the      it (competing consumers)
                            default exchange
``/amq/queue/<name>``       default exchange, ``mandatory``: a      consume an existing queue;
                            missing queue is a PublishError         missing: SubscribeError
``/exchange/<x>[/<key>]``   exchange ``x`` (must exist), key or ""  own exclusive queue bound
                                                                    with key (or durable)
``/reply-queue/<name>``     default exchange, routing key ``name``  consume that queue
``/temp-queue/<x>``         only in ``reply-to``: the session gets  refused (DestinationError)
                            a private exclusive auto-delete queue,
                            delivered as subscription
                            ``/temp-queue/<x>``; ``reply-to`` is
                            rewritten to ``/reply-queue/<queue>``
``/user/queue/<x>``         every live session of the sender's      node fan-out via the user
                            own user                                exchange (``auto``); own
                                                                    exclusive queue (client
                                                                    ack); shown as
                                                                    ``/user/queue/<x>``
``/user/<name>/queue/<x>``  every live session of ``name``, on any  refused
                            node: user exchange (direct, durable,
                            ``user_exchange``), key
                            ``<url-quoted name>/<x>``; nobody
                            online means the message is dropped
==========================  ======================================  ==========================

A SUBSCRIBE to ``/topic/`` or ``/exchange/`` with ``durable:true`` (or ``persistent:true``)
and ``auto-delete:false`` is a **durable subscription**: a durable queue (type
``durable_queue_type``, quorum by default, unless ``x-queue-type`` says otherwise) named by
``x-queue-name`` or ``stompgate.dsub.<owner tag><digest of user, subscription id,
destination>`` (see :func:`durable_queue_name`: the name says whose it is, so nobody else's
frame can attach to it), bound to the exchange. It collects messages while the user is away;
re-subscribing with the same id and destination, on any node, gets them, after the RECEIPT.
A durable SUBSCRIBE without ``id`` is refused (``Missing Header``). UNSUBSCRIBE keeps the
queue unless the UNSUBSCRIBE frame itself carries ``durable:true`` (or ``persistent:true``;
its headers go to :meth:`RelaySubscription.cancel`), which deletes it, as RabbitMQ's plugin
does; :meth:`Relay.detach` never deletes it. Two sessions that open the same durable
subscription share its queue. A user has at most ``STOMPGATE_MAX_DURABLE_SUBSCRIPTIONS`` (50)
and can list and cancel them over STOMP and HTTP (:mod:`gateway.durable_api`).

A ``/topic/`` SUBSCRIBE with ``x-queue-name`` consumes that queue, bound to the topic, whatever
its ack mode: made (non-durable, auto-delete and exclusive unless durable) or, when the
SUBSCRIBE gives no ``x-`` arguments, reused as it is if it exists (say, made by a native AMQP
client or by RabbitMQ's plugin), so a native AMQP client publishing to that queue name
through the default exchange reaches the STOMP subscriber. Queue arguments accepted as ``x-``
headers (an allow-list; any other ``x-`` header on a SUBSCRIBE that gets a queue of its own
is refused with ``Invalid header``): ``x-queue-type``, ``x-message-ttl``, ``x-expires``,
``x-max-length``, ``x-max-length-bytes``, ``x-max-priority``, ``x-dead-letter-exchange``,
``x-dead-letter-routing-key``, ``x-overflow``, ``x-single-active-consumer``, ``x-max-age``,
``x-delivery-limit``, ``x-queue-mode`` and a few more (:mod:`.headers`); their bounds, and
who may name which queue or dead-letter target, are the gatekeeper's
(:mod:`gateway.auth.queue_policy`, ``docs/security.md``). A ``/queue/`` that already exists
with other arguments (say, a quorum queue a worker declared) is used as it is when the
client gave no ``x-`` arguments; with explicit ones the broker's ``PRECONDITION_FAILED`` is
reported.

Header mapping (SEND → AMQP properties → MESSAGE) is RabbitMQ's plugin's; see
:mod:`.headers`. ``user-id`` is never forwarded (the broker checks it against the
gateway's login); ``amqp-message-id`` (not ``message-id``) sets the AMQP message id.

Broker loss
===========

The relay reconnects by itself with jittered exponential backoff (``reconnect_min_delay``
doubling to ``reconnect_max_delay``). ``ready`` is False while disconnected;
``on_connection_lost(reason)`` is called once per loss (never on :meth:`Relay.close`), so
the gateway can close its sessions with a clear ERROR. In-flight publishes raise
PublishError; publish/subscribe while disconnected raise PublishError/SubscribeError
("broker unavailable (...)"). :meth:`Relay.detach` works while disconnected (local cleanup).
On reconnect the node declares a new fan-out queue and binds every key/pattern that still
has local subscribers, and re-creates the consumers of consumer subscriptions that still
exist (non-durable private queues are declared anew; ack ids from before the loss are
ignored: the broker has requeued those messages; a stream subscription starts again from
its ``x-stream-offset``). Durable queues and ``/queue/`` queues
keep their messages throughout. :meth:`Relay.start` makes one connection attempt and
returns either way; ``ready`` (or :meth:`Relay.wait_ready`) tells whether it worked.
The first reconnect attempt after a loss is immediate; backoff applies to failed attempts.

Caveats
=======

* A publish carries an AMQP ``message_id`` only if the SEND had an ``amqp-message-id``
  header (aiormq, used before the wire, stamped a random one on every publish).
* ``mandatory`` publishes (``/amq/queue/``) go one at a time through a channel of their own:
  a ``basic.return`` does not say which publish it returns.
* A subscription whose queue is deleted while it consumes stops receiving (the broker
  cancels the consumer); the session is not told.
* ``ack:auto`` own-consumer subscriptions are acked right after ``deliver()`` (cumulative,
  once per loop turn), so the broker's prefetch bounds what is in flight; a message handed
  to a session that dies before writing it is not redelivered (``auto`` semantics).
* Bindings of a durable queue are never removed by the relay; ``x-queue-name`` reused for
  another destination accumulates bindings.

Cost, measured here (RabbitMQ 3.10, 256-byte messages, one publish, its confirm and its
delivery in turn, uvloop): about 90 µs of process CPU with the wire against 330 µs with
aiormq (``basic_publish`` plus a no-ack consumer), most of what is left being the socket
calls and loop wake-ups. Building the PreparedMessage, matching and handing it to 100
local sinks adds little.
"""

from .destinations import (
    AmqQueue,
    Destination,
    DestinationError,
    Exchange,
    Queue,
    ReplyQueue,
    TempQueue,
    Topic,
    UserQueue,
    destination_of_delivery,
    parse_destination,
)
from .errors import BrokerRuleError, PublishError, SubscribeError
from .planner import durable_queue_name, user_routing_key
from .relay import Relay
from .settings import RelaySettings
from .subscription import DeliverySink, RelaySubscription
from .wire import ReadHooks

__all__ = [
    "AmqQueue",
    "BrokerRuleError",
    "DeliverySink",
    "Destination",
    "DestinationError",
    "Exchange",
    "PublishError",
    "Queue",
    "ReadHooks",
    "Relay",
    "RelaySettings",
    "RelaySubscription",
    "ReplyQueue",
    "SubscribeError",
    "TempQueue",
    "Topic",
    "UserQueue",
    "destination_of_delivery",
    "durable_queue_name",
    "parse_destination",
    "user_routing_key",
]
