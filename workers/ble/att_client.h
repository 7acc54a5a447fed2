/*
 * A GATT client for the MCUmgr SMP service over any ATT bearer that keeps
 * PDU boundaries: a BlueZ L2CAP LE socket on the ATT channel, or the
 * virtual board's abstract Unix SOCK_SEQPACKET socket.
 */
#ifndef ATT_CLIENT_H
#define ATT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "smp_ble.h"

struct att_client;

struct att_client *att_client_new(size_t max_pkt);
void att_client_free(struct att_client *c);
/*
 * Take fd (connected), exchange the MTU, discover the SMP service and
 * characteristic and enable notifications.  Each step waits at most
 * timeout_ms.  0, or -1 with the reason in why (fd is then closed).
 */
int att_client_start(struct att_client *c, int fd, int timeout_ms, char *why,
                     size_t whycap);
int att_client_fd(const struct att_client *c);
/* One SMP packet as Write Commands of at most MTU - 3 bytes.  -1: lost. */
int att_client_send(struct att_client *c, const uint8_t *pkt, size_t len);
/* Read the PDUs that are ready; cb per whole SMP packet.  -1: lost. */
int att_client_read(struct att_client *c, smp_ble_packet_cb cb, void *arg);
void att_client_close(struct att_client *c);

#endif
