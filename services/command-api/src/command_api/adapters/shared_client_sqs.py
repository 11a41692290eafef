"""kombu's SQS transport whose channels share one boto3 SQS client per process.

kombu builds a boto3 session and client per connection (``SQS.Transport`` scopes its clients
to the connection), and the publisher's producer pool holds ``_SEND_THREADS`` connections: the
SQS service model was loaded once per connection, ~7 MiB each (the command API's gunicorn
workers measured 134 MiB with eight, against ~80 MiB with one). boto3's low-level clients are
thread-safe (boto3 docs, "Multithreading or multiprocessing with clients"), so every channel of
a process may use the same one.

The publisher passes the client through the transport option ``shared_sqs_client``: a callable
without arguments that returns the process's client. Without it the channel builds its own, as
kombu does.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import SQS


class SharedClientChannel(SQS.Channel):
    """An SQS channel that takes its boto3 client from the ``shared_sqs_client`` option."""

    def new_sqs_client(
        self,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        session_token: str | None = None,
    ) -> Any:
        """The shared client when the option is set (the arguments are then those the client
        was built with), else a new client as kombu builds it."""
        shared = self.transport_options.get("shared_sqs_client")
        if shared is not None:
            return shared()
        return super().new_sqs_client(region, access_key_id, secret_access_key, session_token)


class Transport(SQS.Transport):
    """Celery's ``broker_transport``: ``command_api.adapters.shared_client_sqs:Transport``."""

    Channel = SharedClientChannel
