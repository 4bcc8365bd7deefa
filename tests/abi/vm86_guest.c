// SPDX-License-Identifier: GPL-2.0
/*
 * A 32-bit guest that runs code in virtual-8086 mode: it builds a GDT
 * with a TSS and an IDT, IRETs with EFLAGS.VM=1 and IOPL=3 into 16-bit
 * code at 0700:0000, which stores to the VGA window at b800:0010 (MMIO:
 * the host leaves 640 KiB - 1 MiB unbacked), does OUT 0x10 directly (the
 * TSS's I/O bitmap allows ports 0-31; in vm86 mode IOPL does not govern
 * I/O), and INT 0x21 back to the 32-bit monitor (IOPL=3 sends it through
 * the IDT), which checks the
 * frame the CPU pushed, does OUT 0x11 and HLTs. A #GP anywhere goes to
 * OUT 0x12 with the error code and the faulting EIP, then HLT.
 * Built with -m32 into a flat binary at 0x10000, entered in 32-bit
 * protected mode, paging off.
 */
#include <stdint.h>

typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

struct tss {
	u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
	u32 eax, ecx, edx, ebx, esp, ebp, esi, edi, es, cs, ss, ds, fs, gs, ldt;
	u16 trap, iomap;
} __attribute__((packed));

struct frame {			/* what int 0x21 from vm86 pushed, after our pusha */
	u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
	u32 eip, cs, eflags, vm_esp, vm_ss, vm_es, vm_ds, vm_fs, vm_gs;
};

#define GDT	((volatile u64 *)0x8000)
#define IDT	((volatile u64 *)0xa000)
#define VM86_CODE	0x7000		/* 0700:0000 */
#define RESULT	((volatile u32 *)0x9100)

/* The TSS with an I/O bitmap: ports 0-31 allowed, then the terminating byte. */
static struct {
	struct tss t;
	unsigned char io[4], end;
} __attribute__((packed)) tss __attribute__((aligned(16))) = { .end = 0xff };
static unsigned char ring0_stack[4096] __attribute__((aligned(16)));

static u64 gate(void (*handler)(void), int dpl)
{
	u32 h = (u32)handler;

	return (h & 0xffff) | (8ull << 16) | ((u64)(0x8e | (dpl << 5)) << 40) |
	       ((u64)(h >> 16) << 48);
}

static u64 tss_descriptor(u32 base, u32 limit)
{
	return (limit & 0xffff) | ((u64)(base & 0xffffff) << 16) | (0x89ull << 40) |
	       ((u64)(limit >> 16 & 0xf) << 48) | ((u64)(base >> 24) << 56);
}

/* int 0x21 from vm86: check the frame, report, stop. */
void int21_handler(struct frame *f)
{
	u32 ok = (f->eflags & 0x20000) && f->cs == 0x0700 && f->vm_ds == 0x0700 &&
		 f->vm_es == 0xb800 && f->eip == RESULT[1];

	RESULT[0] = ok ? 0x8086 : 0xbad;
	RESULT[2] = f->eflags;
	__asm__ volatile("out %%al, $0x11; hlt" :: "a"(ok));
}

void gp_handler(u32 *frame)
{
	RESULT[0] = 0x6b9;
	RESULT[2] = frame[8];		/* error code */
	RESULT[3] = frame[9];		/* EIP */
	__asm__ volatile("out %%al, $0x12; hlt" :: "a"(0));
}

__asm__(".text\n"
	".globl int21_stub, gp_stub\n"
	"int21_stub:\n"
	"	pusha\n"
	"	mov $16, %ax\n"
	"	mov %ax, %ds\n"
	"	mov %ax, %es\n"
	"	push %esp\n"
	"	call int21_handler\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	"gp_stub:\n"
	"	pusha\n"
	"	mov $16, %ax\n"
	"	mov %ax, %ds\n"
	"	push %esp\n"
	"	call gp_handler\n"
	"2:	hlt\n"
	"	jmp 2b\n");
void int21_stub(void);
void gp_stub(void);

/* 16-bit code for vm86 mode, copied to 0x7000. */
__asm__(".section .rodata\n"
	".globl vm86_code, vm86_code_end, vm86_int_at\n"
	".code16\n"
	"vm86_code:\n"
	"	mov $0xb800, %ax\n"
	"	mov %ax, %es\n"
	"	movw $0x2f41, %es:0x10\n"	/* MMIO: 0xb8010 */
	"	mov $0x86, %al\n"
	"	out %al, $0x10\n"		/* IOPL=3: no #GP */
	"	int $0x21\n"
	"vm86_int_at:\n"
	"	hlt\n"
	"vm86_code_end:\n"
	".code32\n"
	".text\n");
extern const unsigned char vm86_code[], vm86_code_end[], vm86_int_at[];

__attribute__((section(".text.entry"))) void _start(void)
{
	struct { u16 limit; u32 base; } __attribute__((packed)) gdtr = { 4 * 8 - 1, 0x8000 },
		idtr = { 256 * 8 - 1, 0xa000 };

	for (u32 i = 0; i < (u32)(vm86_code_end - vm86_code); i++)
		((volatile unsigned char *)VM86_CODE)[i] = vm86_code[i];
	RESULT[1] = vm86_int_at - vm86_code;	/* the EIP int 0x21 returns to */
	tss.t.esp0 = (u32)ring0_stack + sizeof(ring0_stack);
	tss.t.ss0 = 16;
	tss.t.iomap = sizeof(tss.t);
	GDT[3] = tss_descriptor((u32)&tss, sizeof(tss) - 1);
	IDT[13] = gate(gp_stub, 0);
	IDT[0x21] = gate(int21_stub, 3);		/* DPL 3: reachable from vm86 */
	__asm__ volatile("lgdt %0; lidt %1; ltr %w2" :: "m"(gdtr), "m"(idtr), "r"(24));
	/* The vm86 frame: GS FS DS ES SS ESP EFLAGS(VM, IOPL=3) CS EIP. */
	__asm__ volatile("push $0x0700\n"	/* gs */
			 "push $0x0700\n"	/* fs */
			 "push $0x0700\n"	/* ds */
			 "push $0x0700\n"	/* es */
			 "push $0x0700\n"	/* ss */
			 "push $0x0ffe\n"	/* sp */
			 "push $0x23002\n"	/* eflags: VM, IOPL=3 */
			 "push $0x0700\n"	/* cs */
			 "push $0\n"		/* ip */
			 "iret\n");
	for (;;)
		__asm__ volatile("hlt");
}
