#!/bin/sh
# exec-hello.sh: conf/exec.ini's program: greets the client by address,
# then echoes one line back.  Its stderr goes to sockserv's log.
echo "hello $TCPREMOTEIP:$TCPREMOTEPORT, you reached $TCPLOCALIP:$TCPLOCALPORT"
echo "served to $TCPREMOTEIP:$TCPREMOTEPORT" >&2
IFS= read -r line && echo "you said: $line"
