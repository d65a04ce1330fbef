"""kombu's filesystem transport with messages that appear whole, for the embedded broker.

kombu's filesystem transport writes a message straight into the queue folder,
where a consumer may move and read it before the writer has finished: the
worker then reads an empty file and stops on a JSON error (kombu issue #1551).
Here a message is written under a name no consumer looks at and renamed into
place once complete; ``os.replace`` is atomic within one file system. Used
when ``CELERY_BROKER_URL`` is ``filesystem://`` (see the settings).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put ``payload`` onto ``queue``: write it aside, then rename it into the queue folder."""
        # The same name kombu's transport uses (consumers read files in name order).
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
