// darvoza-ss: the security server daemon. Only wires: see security_server/daemon.h.
int main() { return 1; }
