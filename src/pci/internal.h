/* SPDX-License-Identifier: MIT */
/* Between a PCI device and the bus it sits on (src/pci only). */
#ifndef VMDEV_PCI_INTERNAL_H
#define VMDEV_PCI_INTERNAL_H

#include <stdbool.h>

#include "vmdev/pci.h"

/* Config space changed what a BAR decodes; both accept a NULL bus (a
 * device not plugged in yet). */
void pci_bus_mark_dirty(struct vmdev_pci_bus *bus);
void pci_bus_set_intx(struct vmdev_pci_bus *bus, unsigned slot, unsigned pin,
                      bool level);

#endif
