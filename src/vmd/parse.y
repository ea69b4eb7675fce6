/*
 * vm.conf: the grammar (bison) and its hand-written lexer.
 *
 * The lexer reads from a stack of inputs: the files being read (the top one
 * and its includes) and, above them, the macros being expanded.  Macros are
 * plain text substitution outside quotes, as in the other OpenBSD-style
 * configuration files.  Parsing stops at the first error, which is reported
 * as "file:line: message" and leaves the caller's configuration untouched.
 */
%code requires {
#include "vmd/config.h"

struct parser;

/* Where a token came from: the file (names live until parsing ends) and line. */
struct conf_location {
	const char *file;
	int line;
};
#define YYLLOC_DEFAULT(Current, Rhs, N)                                           \
	do {                                                                      \
		if (N)                                                            \
			(Current) = YYRHSLOC(Rhs, 1);                             \
		else                                                              \
			(Current) = YYRHSLOC(Rhs, 0);                             \
	} while (0)
}

%code {
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INCLUDE_DEPTH   16
#define MAX_MACRO_DEPTH	    32
#define MAX_INPUTS	    (MAX_INCLUDE_DEPTH + MAX_MACRO_DEPTH)
#define MAX_FILE_SIZE	    (16 << 20)
#define MAX_FILES	    256 /* files read in one parse, includes counted */
#define MAX_EXPANSION	    (1 << 20) /* bytes of macro text per parse */
#define MAX_TOKEN	    8192      /* longer than any path or command line */

struct input {
	char *data;
	size_t len;
	size_t pos;
	bool is_macro;
	/* files only */
	const char *name;
	int line;
	dev_t dev;
	ino_t ino;
	int depth_at_start; /* brace depth when the include began */
	bool at_line_start; /* no token since the last newline */
};

struct macro {
	char *name;
	char *value;
	bool from_command_line; /* -D: the file cannot redefine it */
};

/* All the state of one parse. */
struct parser {
	struct vmd_config conf;
	const struct config_options *opts;
	struct input inputs[MAX_INPUTS];
	int ninputs;
	int last_input;	     /* where the last character came from, for unget */
	int char_line;	     /* the file line of that character */
	size_t expanded;     /* macro text read so far */
	int brace_depth;
	struct macro *macros;
	size_t nmacros;
	char **names;	     /* every file name read, for locations */
	size_t nnames;
	struct vm_params *vm; /* the vm block being read */
	const struct vm_params *template; /* its template, within conf.vms */
	struct vm_nic nic;		  /* the interface being read */
	struct vm_switch sw;		  /* the switch block being read */
	struct vmd_user_limit *limit;	  /* the `limit user` statement being read */
	char token[MAX_TOKEN];
	int last_kind;	     /* the last token, for syntax error messages */
	char last_text[48];
	bool last_starts;    /* it starts a statement */
	int prev_kind;	     /* and the one before it */
	char prev_text[48];
	bool prev_starts;
	char setter_err[512];
	char *err;
	size_t errlen;
	bool failed;
};

static int yylex(YYSTYPE *, YYLTYPE *, struct parser *);
static void yyerror(YYLTYPE *, struct parser *, const char *);
static void conf_error(struct parser *, const YYLTYPE *, const char *, ...)
	__attribute__((format(printf, 3, 4)));
static int include_file(struct parser *, const YYLTYPE *, const char *);
static int define_macro(struct parser *, const YYLTYPE *, const char *, const char *);
static int begin_vm(struct parser *, const YYLTYPE *, const char *, const YYLTYPE *,
		    const char *);
static int end_vm(struct parser *, const YYLTYPE *);
static int begin_switch(struct parser *, const YYLTYPE *, const char *);
static int end_switch(struct parser *, const YYLTYPE *);
static int set_once(struct parser *, const YYLTYPE *, uint32_t, const char *);
static int check(struct parser *, const YYLTYPE *, int);
static int nic_switch(struct parser *, const YYLTYPE *, const char *);
static int nic_lladdr(struct parser *, const YYLTYPE *, const char *, bool);
static int set_owner(struct parser *, const YYLTYPE *, const char *, struct vm_owner *);
static int set_stagger(struct parser *, const YYLTYPE *, long long, long long);
static int begin_user_limit(struct parser *, const YYLTYPE *, const char *);
static int set_user_limit(struct parser *, const YYLTYPE *, uint32_t, long long, const char *);

/* err for the setters in common/vmconf.c; check() adds file and line. */
#define SETTER_ERR p->setter_err, sizeof(p->setter_err)
}

%define api.pure full
%define api.location.type {struct conf_location}
%define parse.error simple
%locations
%initial-action { @$.file = ""; @$.line = 0; }
%parse-param { struct parser *p }
%lex-param { struct parser *p }

%union {
	char *string;
	struct {
		char *text;
		long long value;
	} number;
	long long integer;
	uint32_t bits;
}

%token ALLOW BOOT CDROM CMDLINE CPUS DELAY DEVICE DISABLE DISK DOWN ENABLE FORMAT
%token GROUP INCLUDE INET6 INITRD INSTANCE INTERFACE INTERFACES KERNEL LLADDR LOCAL
%token LOCKED MEMORY OWNER PARALLEL PREFIX RANGE READONLY SOCKET STAGGERED START SWITCH UID UP VM
%token LIMIT USER VMS
%token LEXERROR
%token <string> STRING WORD
%token <number> NUMBER
%type <string> string opt_instance opt_string disk_format
%type <integer> integer interface_kind
%type <bits> allow_item opt_readonly

%destructor { free($$); } <string>
%destructor { free($$.text); } <number>

%%

grammar		: %empty
		| grammar '\n'
		| grammar include
		| grammar macro '\n'
		| grammar global '\n'
		| grammar switch '\n'
		| grammar vm '\n'
		;

/*
 * The newline belongs to the include so that the rule reduces before the
 * lexer reads on: the next token comes from the included file.
 */
include		: INCLUDE string '\n' {
			int r = include_file(p, &@2, $2);
			free($2);
			if (r == -1)
				YYABORT;
		}
		;

string		: STRING
		| WORD
		| NUMBER		{ $$ = $1.text; }
		;

integer		: NUMBER		{ free($1.text); $$ = $1.value; }
		;

macro		: WORD '=' string {
			int r = define_macro(p, &@1, $1, $3);
			free($1);
			free($3);
			if (r == -1)
				YYABORT;
		}
		;

optnl		: %empty
		| optnl '\n'
		;

sep		: ',' optnl
		| '\n' optnl
		;

optsep		: %empty
		| sep
		;

global		: LOCAL PREFIX string {
			struct vmd_globals *g = &p->conf.globals;
			int r = vm_parse_prefix4($3, &g->prefix4, &g->prefix4_len, SETTER_ERR);
			free($3);
			if (check(p, &@3, r) == -1)
				YYABORT;
			g->set |= VMD_SET_PREFIX4;
		}
		| LOCAL INET6 {
			p->conf.globals.inet6 = true;
		}
		| LOCAL INET6 PREFIX string {
			struct vmd_globals *g = &p->conf.globals;
			int r = vm_parse_prefix6($4, &g->prefix6, &g->prefix6_len, SETTER_ERR);
			free($4);
			if (check(p, &@4, r) == -1)
				YYABORT;
			g->inet6 = true;
		}
		| SOCKET OWNER string {
			int r = set_owner(p, &@3, $3, &p->conf.globals.socket_owner);
			free($3);
			if (r == -1)
				YYABORT;
			p->conf.globals.set |= VMD_SET_SOCKET;
		}
		| STAGGERED START PARALLEL integer DELAY integer {
			if (set_stagger(p, &@4, $4, $6) == -1)
				YYABORT;
		}
		| UID RANGE integer integer {
			/* Aligned powers of two: vmm's filter pins setresuid to the range with one mask. */
			unsigned long long first = (unsigned long long)$3, count = (unsigned long long)$4;

			if ($3 < 1 || $4 < 4 || (count & (count - 1)) || first % count ||
			    first + count > 0xffffffffULL) {
				conf_error(p, &@3, "uid range %lld %lld: the count must be a power of two (4 or more) "
					"and the first uid a non-zero multiple of it, below 2^32", $3, $4);
				YYABORT;
			}
			p->conf.globals.uid_first = (uint32_t)first;
			p->conf.globals.uid_count = (uint32_t)count;
		}
		| LIMIT USER limit_who limit_items
		;

/* `limit user [name] item...`: no name is the default for every user. */
limit_who	: %empty {
			if (begin_user_limit(p, NULL, NULL) == -1)
				YYABORT;
		}
		| string {
			int r = begin_user_limit(p, &@1, $1);
			free($1);
			if (r == -1)
				YYABORT;
		}
		;

limit_items	: limit_item
		| limit_items limit_item
		;

limit_item	: VMS integer {
			if (set_user_limit(p, &@2, VMD_LIMIT_VMS, $2, NULL) == -1)
				YYABORT;
		}
		| CPUS integer {
			if (set_user_limit(p, &@2, VMD_LIMIT_CPUS, $2, NULL) == -1)
				YYABORT;
		}
		| MEMORY string {
			int r = set_user_limit(p, &@2, VMD_LIMIT_MEMORY, 0, $2);
			free($2);
			if (r == -1)
				YYABORT;
		}
		;

switch		: switch_head optnl '{' optnl switch_opts '}' {
			if (end_switch(p, &@1) == -1)
				YYABORT;
		}
		;

switch_head	: SWITCH string {
			int r = begin_switch(p, &@2, $2);
			free($2);
			if (r == -1)
				YYABORT;
		}
		;

switch_opts	: %empty
		| switch_opt_l optsep
		;

switch_opt_l	: switch_opt
		| switch_opt_l sep switch_opt
		;

switch_opt	: INTERFACE string {
			int r = vm_check_ifname("switch interface", $2, SETTER_ERR);
			if (r == 0)
				strcpy(p->sw.ifname, $2);
			free($2);
			if (check(p, &@2, r) == -1)
				YYABORT;
		}
		| GROUP string {
			int r = vm_check_ifname("group", $2, SETTER_ERR);
			if (r == 0)
				strcpy(p->sw.group, $2);
			free($2);
			if (check(p, &@2, r) == -1)
				YYABORT;
		}
		| LOCKED LLADDR		{ p->sw.locked_lladdr = true; }
		| UP			{ p->sw.down = false; }
		| DOWN			{ p->sw.down = true; }
		| ENABLE		{ p->sw.enabled = true; }
		| DISABLE		{ p->sw.enabled = false; }
		;

vm		: vm_head optnl '{' optnl vm_opts '}' {
			if (end_vm(p, &@1) == -1)
				YYABORT;
		}
		;

/* vm "template" instance "name", or vm "name" */
vm_head		: VM string opt_instance {
			int r = $3 == NULL ? begin_vm(p, &@2, $2, NULL, NULL)
					   : begin_vm(p, &@3, $3, &@2, $2);
			free($2);
			free($3);
			if (r == -1)
				YYABORT;
		}
		;

opt_instance	: %empty		{ $$ = NULL; }
		| INSTANCE string	{ $$ = $2; }
		;

vm_opts		: %empty
		| vm_opt_l optsep
		;

vm_opt_l	: vm_opt
		| vm_opt_l sep vm_opt
		;

vm_opt		: MEMORY string {
			int r = set_once(p, &@1, VM_SET_MEMORY, "memory");
			if (r == 0)
				r = check(p, &@2, vm_set_memory(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| CPUS integer {
			if (set_once(p, &@1, VM_SET_CPUS, "cpus") == -1 ||
			    check(p, &@2, vm_set_cpus(p->vm, $2, SETTER_ERR)) == -1)
				YYABORT;
		}
		| BOOT string {
			int r = set_once(p, &@1, VM_SET_KERNEL, "boot");
			if (r == 0)
				r = check(p, &@2, vm_set_kernel(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| KERNEL string {
			int r = set_once(p, &@1, VM_SET_KERNEL, "kernel");
			if (r == 0)
				r = check(p, &@2, vm_set_kernel(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| INITRD string {
			int r = set_once(p, &@1, VM_SET_INITRD, "initrd");
			if (r == 0)
				r = check(p, &@2, vm_set_initrd(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| CMDLINE string {
			int r = set_once(p, &@1, VM_SET_CMDLINE, "cmdline");
			if (r == 0)
				r = check(p, &@2, vm_set_cmdline(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| BOOT DEVICE DISK {
			if (set_once(p, &@1, VM_SET_BOOTDEV, "boot device") == -1)
				YYABORT;
			vm_set_boot_device(p->vm, "disk", SETTER_ERR);
		}
		| BOOT DEVICE CDROM {
			if (set_once(p, &@1, VM_SET_BOOTDEV, "boot device") == -1)
				YYABORT;
			vm_set_boot_device(p->vm, "cdrom", SETTER_ERR);
		}
		| BOOT DEVICE string {
			int r = set_once(p, &@1, VM_SET_BOOTDEV, "boot device");
			if (r == 0)
				r = check(p, &@3, vm_set_boot_device(p->vm, $3, SETTER_ERR));
			free($3);
			if (r == -1)
				YYABORT;
		}
		| DISK string disk_format opt_readonly {
			int r = check(p, &@2, vm_add_disk(p->vm, $2, $3, $4 != 0, SETTER_ERR));
			free($2);
			free($3);
			if (r == -1)
				YYABORT;
		}
		| CDROM string {
			int r = set_once(p, &@1, VM_SET_CDROM, "cdrom");
			if (r == 0)
				r = check(p, &@2, vm_set_cdrom(p->vm, $2, SETTER_ERR));
			free($2);
			if (r == -1)
				YYABORT;
		}
		| interface_head opt_interface_body {
			if (check(p, &@1, vm_add_nic(p->vm, &p->nic, SETTER_ERR)) == -1)
				YYABORT;
		}
		| INTERFACES integer {
			if (set_once(p, &@1, VM_SET_INTERFACES, "interfaces") == -1 ||
			    check(p, &@2, vm_set_min_nics(p->vm, $2, SETTER_ERR)) == -1)
				YYABORT;
		}
		| OWNER string {
			int r = set_once(p, &@1, VM_SET_OWNER, "owner");
			if (r == 0)
				r = set_owner(p, &@2, $2, &p->vm->owner);
			free($2);
			if (r == -1)
				YYABORT;
		}
		| ENABLE		{ p->vm->enabled = true; }
		| DISABLE		{ p->vm->enabled = false; }
		| ALLOW INSTANCE allow_item {
			p->vm->allow |= $3;
			p->vm->set |= VM_SET_ALLOW;
		}
		| ALLOW INSTANCE '{' optnl allow_items '}' {
			p->vm->set |= VM_SET_ALLOW;
		}
		| INSTANCE OWNER GROUP {
			p->vm->allow |= VM_INSTANCE_OWNER_GROUP;
			p->vm->set |= VM_SET_ALLOW;
		}
		;

disk_format	: %empty		{ $$ = NULL; }
		| FORMAT string		{ $$ = $2; }
		;

opt_readonly	: %empty		{ $$ = 0; }
		| READONLY		{ $$ = 1; }
		;

interface_head	: interface_kind opt_string {
			memset(&p->nic, 0, sizeof(p->nic));
			p->nic.flags = (uint32_t)$1;
			if ($2 != NULL) {
				int r = vm_check_ifname("interface", $2, SETTER_ERR);
				if (r == 0)
					strcpy(p->nic.ifname, $2);
				free($2);
				if (check(p, &@2, r) == -1)
					YYABORT;
			}
		}
		;

interface_kind	: INTERFACE		{ $$ = 0; }
		| LOCAL INTERFACE	{ $$ = VM_NIC_LOCAL; }
		;

opt_string	: %empty		{ $$ = NULL; }
		| string
		;

opt_interface_body: %empty
		| '{' optnl interface_opts '}'
		;

interface_opts	: %empty
		| interface_opt_l optsep
		;

interface_opt_l	: interface_opt
		| interface_opt_l sep interface_opt
		;

interface_opt	: SWITCH string {
			int r = nic_switch(p, &@2, $2);
			free($2);
			if (r == -1)
				YYABORT;
		}
		| GROUP string {
			int r = vm_check_ifname("group", $2, SETTER_ERR);
			if (r == 0)
				strcpy(p->nic.group, $2);
			free($2);
			if (check(p, &@2, r) == -1)
				YYABORT;
		}
		| LLADDR opt_string {
			int r = nic_lladdr(p, &@2, $2, false);
			free($2);
			if (r == -1)
				YYABORT;
		}
		| LOCKED LLADDR opt_string {
			int r = nic_lladdr(p, &@3, $3, true);
			free($3);
			if (r == -1)
				YYABORT;
		}
		| UP			{ p->nic.flags &= ~VM_NIC_DOWN; }
		| DOWN			{ p->nic.flags |= VM_NIC_DOWN; }
		;

allow_items	: %empty
		| allow_item_l optsep
		;

allow_item_l	: allow_item		{ p->vm->allow |= $1; }
		| allow_item_l sep allow_item { p->vm->allow |= $3; }
		;

allow_item	: BOOT			{ $$ = VM_ALLOW_BOOT; }
		| CDROM			{ $$ = VM_ALLOW_CDROM; }
		| CPUS			{ $$ = VM_ALLOW_CPUS; }
		| DISK			{ $$ = VM_ALLOW_DISK; }
		| INSTANCE		{ $$ = VM_ALLOW_INSTANCE; }
		| INTERFACE		{ $$ = VM_ALLOW_INTERFACE; }
		| MEMORY		{ $$ = VM_ALLOW_MEMORY; }
		| OWNER string {
			int r = set_owner(p, &@2, $2, &p->vm->instance_owner);
			free($2);
			if (r == -1)
				YYABORT;
			$$ = 0;
		}
		;

%%

/* Sorted for bsearch. */
static const struct keyword {
	const char *word;
	int token;
} keywords[] = {
	{ "allow", ALLOW },
	{ "boot", BOOT },
	{ "cdrom", CDROM },
	{ "cmdline", CMDLINE },
	{ "cpus", CPUS },
	{ "delay", DELAY },
	{ "device", DEVICE },
	{ "disable", DISABLE },
	{ "disk", DISK },
	{ "down", DOWN },
	{ "enable", ENABLE },
	{ "format", FORMAT },
	{ "group", GROUP },
	{ "include", INCLUDE },
	{ "inet6", INET6 },
	{ "initrd", INITRD },
	{ "instance", INSTANCE },
	{ "interface", INTERFACE },
	{ "interfaces", INTERFACES },
	{ "kernel", KERNEL },
	{ "limit", LIMIT },
	{ "lladdr", LLADDR },
	{ "local", LOCAL },
	{ "locked", LOCKED },
	{ "memory", MEMORY },
	{ "owner", OWNER },
	{ "parallel", PARALLEL },
	{ "prefix", PREFIX },
	{ "range", RANGE },
	{ "readonly", READONLY },
	{ "socket", SOCKET },
	{ "staggered", STAGGERED },
	{ "start", START },
	{ "switch", SWITCH },
	{ "uid", UID },
	{ "up", UP },
	{ "user", USER },
	{ "vm", VM },
	{ "vms", VMS },
};

static int
keyword_compare(const void *key, const void *element)
{
	return strcmp(key, ((const struct keyword *)element)->word);
}

static int
keyword_token(const char *word)
{
	const struct keyword *k;

	k = bsearch(word, keywords, sizeof(keywords) / sizeof(keywords[0]),
		    sizeof(keywords[0]), keyword_compare);
	return k == NULL ? 0 : k->token;
}

/* The innermost file being read: macros expand within it. */
static struct input *
current_file(struct parser *p)
{
	for (int i = p->ninputs - 1; i >= 0; i--)
		if (!p->inputs[i].is_macro)
			return &p->inputs[i];
	return NULL;
}

static YYLTYPE
here(struct parser *p)
{
	struct input *in = current_file(p);
	YYLTYPE loc = { in ? in->name : "?", p->char_line };

	return loc;
}

static void
conf_error(struct parser *p, const YYLTYPE *loc, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%d: %s", loc->file, loc->line, msg);
}

/* Reports a setter's message at loc when r says it failed. */
static int
check(struct parser *p, const YYLTYPE *loc, int r)
{
	if (r == -1)
		conf_error(p, loc, "%s", p->setter_err);
	return r;
}

static bool
is_identifier(const char *t)
{
	if (t[0] == '\0')
		return false;
	for (const char *c = t; *c; c++)
		if (!isalpha((unsigned char)*c) && *c != '-' && *c != '_')
			return false;
	return true;
}

/*
 * Names the token for a syntax error message.  A word that starts a
 * statement and is not a macro definition is a misspelt keyword.
 */
static void
yyerror(YYLTYPE *loc, struct parser *p, const char *msg)
{
	const char *t = p->last_text;

	if (p->prev_kind == WORD && p->prev_starts && p->last_kind != '=' &&
	    is_identifier(p->prev_text)) {
		conf_error(p, loc, "unknown keyword \"%s\"", p->prev_text);
		return;
	}
	if (p->last_kind == '=' && p->prev_starts && p->brace_depth == 0 &&
	    keyword_token(p->prev_text) != 0) {
		conf_error(p, loc, "\"%s\" is a keyword and cannot name a macro", p->prev_text);
		return;
	}
	switch (p->last_kind) {
	case WORD:
		if (is_identifier(t))
			conf_error(p, loc, "unknown keyword \"%s\"", t);
		else
			conf_error(p, loc, "syntax error at \"%s\"", t);
		break;
	case STRING:
		conf_error(p, loc, "unexpected string \"%s\"", t);
		break;
	case NUMBER:
		conf_error(p, loc, "unexpected number %s", t);
		break;
	case '\n':
		conf_error(p, loc, "unexpected end of line");
		break;
	case YYEOF:
		conf_error(p, loc, "unexpected end of file");
		break;
	default:
		if (keyword_token(t) != 0)
			conf_error(p, loc, "unexpected keyword \"%s\"", t);
		else
			conf_error(p, loc, "%s at \"%s\"", msg, t);
	}
}

/*
 * The next character, or EOF at the end of the innermost file.  Expanded
 * macros are popped as they run out.  A backslash before a newline joins
 * the lines.
 */
static int
lgetc(struct parser *p)
{
	struct input *in;
	int c;

	for (;;) {
		in = &p->inputs[p->ninputs - 1];
		p->last_input = p->ninputs - 1;
		if (in->pos >= in->len) {
			if (!in->is_macro)
				return EOF;
			free(in->data);
			p->ninputs--;
			continue;
		}
		c = (unsigned char)in->data[in->pos++];
		if (in->is_macro)
			return c;
		p->char_line = in->line;
		if (c == '\n') {
			in->line++;
		} else if (c == '\\' && in->pos < in->len && in->data[in->pos] == '\n') {
			in->pos++;
			in->line++;
			continue;
		}
		return c;
	}
}

/* Puts back the last character lgetc returned. */
static void
lungetc(struct parser *p, int c)
{
	struct input *in = &p->inputs[p->last_input];

	if (c == EOF)
		return;
	in->pos--;
	if (!in->is_macro && c == '\n')
		in->line--;
}

static bool
is_word_char(int c)
{
	if (c == EOF || c <= ' ' || c == 0x7f)
		return false;
	return strchr("\"#${},=\\", c) == NULL;
}

static bool
is_macro_name_char(int c)
{
	return c != EOF && isascii(c) && (isalnum(c) || c == '_');
}

static struct macro *
find_macro(struct parser *p, const char *name)
{
	for (size_t i = 0; i < p->nmacros; i++)
		if (strcmp(p->macros[i].name, name) == 0)
			return &p->macros[i];
	return NULL;
}

/* After a '$': reads the name and pushes the macro's text as input. */
static int
expand_macro(struct parser *p)
{
	char name[128];
	size_t len = 0;
	struct macro *m;
	struct input *in;
	YYLTYPE loc = here(p);
	int c;

	while (is_macro_name_char(c = lgetc(p))) {
		if (len + 1 >= sizeof(name)) {
			conf_error(p, &loc, "macro name is too long");
			return -1;
		}
		name[len++] = (char)c;
	}
	lungetc(p, c);
	name[len] = '\0';
	if (len == 0) {
		conf_error(p, &loc, "'$' is not followed by a macro name");
		return -1;
	}
	if ((m = find_macro(p, name)) == NULL) {
		conf_error(p, &loc, "undefined macro $%s", name);
		return -1;
	}
	p->expanded += strlen(m->value);
	if (p->expanded > MAX_EXPANSION || p->ninputs >= MAX_INPUTS) {
		conf_error(p, &loc, "macro $%s expands too far (does it refer to itself?)",
			   name);
		return -1;
	}
	in = &p->inputs[p->ninputs];
	memset(in, 0, sizeof(*in));
	/* A copy: the macro may be redefined while its text is read. */
	if ((in->data = strdup(m->value)) == NULL) {
		conf_error(p, &loc, "out of memory");
		return -1;
	}
	in->len = strlen(in->data);
	in->is_macro = true;
	p->ninputs++;
	return 0;
}

static int
lex_string(struct parser *p, YYSTYPE *lval)
{
	YYLTYPE start = here(p);
	size_t len = 0;
	int c;

	for (;;) {
		c = lgetc(p);
		if (c == EOF || c == '\n') {
			conf_error(p, &start, "unterminated string");
			return LEXERROR;
		}
		if (c == '"')
			break;
		if (c == '\\') {
			int next = lgetc(p);

			if (next == '"' || next == '\\')
				c = next;
			else
				lungetc(p, next);
		}
		if (c < ' ' && c != '\t') {
			conf_error(p, &start, "string has a control character (0x%02x)", c);
			return LEXERROR;
		}
		if (len + 1 >= sizeof(p->token)) {
			conf_error(p, &start, "string is longer than %zu bytes",
				   sizeof(p->token) - 1);
			return LEXERROR;
		}
		p->token[len++] = (char)c;
	}
	p->token[len] = '\0';
	if ((lval->string = strdup(p->token)) == NULL) {
		conf_error(p, &start, "out of memory");
		return LEXERROR;
	}
	return STRING;
}

static bool
is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* A keyword, a number or a word; macros expand within it. */
static int
lex_word(struct parser *p, YYSTYPE *lval, int c)
{
	YYLTYPE start = here(p);
	size_t len = 0;
	int token;
	char *copy;

	for (;; c = lgetc(p)) {
		if (c == '$') {
			if (expand_macro(p) == -1)
				return LEXERROR;
			continue;
		}
		if (!is_word_char(c))
			break;
		if (len + 1 >= sizeof(p->token)) {
			conf_error(p, &start, "word is longer than %zu bytes",
				   sizeof(p->token) - 1);
			return LEXERROR;
		}
		p->token[len++] = (char)c;
	}
	lungetc(p, c);
	p->token[len] = '\0';
	if (len == 0)
		return 0; /* a macro that expanded to nothing: read on */
	if ((token = keyword_token(p->token)) != 0)
		return token;
	if ((copy = strdup(p->token)) == NULL) {
		conf_error(p, &start, "out of memory");
		return LEXERROR;
	}
	if (is_number(p->token)) {
		errno = 0;
		lval->number.value = strtoll(p->token, NULL, 10);
		lval->number.text = copy;
		if (errno == ERANGE) {
			free(copy);
			conf_error(p, &start, "number %s is too large", p->token);
			return LEXERROR;
		}
		return NUMBER;
	}
	lval->string = copy;
	return WORD;
}

/* The line a file's end is on: a final newline does not start another. */
static int
last_line(const struct input *in)
{
	return in->at_line_start && in->line > 1 ? in->line - 1 : in->line;
}

/* At the end of a file: close it, or say why it cannot end here. */
static int
end_of_file(struct parser *p)
{
	struct input *in = &p->inputs[p->ninputs - 1];
	YYLTYPE loc = { in->name, last_line(in) };

	if (p->ninputs > 1 && p->brace_depth != in->depth_at_start) {
		conf_error(p, &loc, "end of included file inside a { } block");
		return LEXERROR;
	}
	if (p->ninputs == 1)
		return 0;
	free(in->data);
	p->ninputs--;
	return -1;
}

static int
lex_token(struct parser *p, YYSTYPE *lval, YYLTYPE *lloc)
{
	struct input *file;
	int c, token;

	for (;;) {
		c = lgetc(p);
		if (c == ' ' || c == '\t' || c == '\r')
			continue;
		if (c == '#') {
			while ((c = lgetc(p)) != '\n' && c != EOF)
				;
			lungetc(p, c);
			continue;
		}
		file = current_file(p);
		*lloc = here(p);
		if (c == EOF) {
			lloc->line = last_line(file);
			/* Every file ends its last line, so a statement cannot run on. */
			if (!file->at_line_start) {
				file->at_line_start = true;
				return '\n';
			}
			if ((token = end_of_file(p)) != -1)
				return token;
			continue;
		}
		file->at_line_start = c == '\n';
		switch (c) {
		case '\n': case ',': case '=':
			return c;
		case '{':
			p->brace_depth++;
			return c;
		case '}':
			p->brace_depth--;
			return c;
		case '"':
			return lex_string(p, lval);
		}
		if (c != '$' && !is_word_char(c)) {
			if (isprint(c))
				conf_error(p, lloc, "unexpected character '%c'", c);
			else
				conf_error(p, lloc, "unexpected character 0x%02x", c);
			return LEXERROR;
		}
		if ((token = lex_word(p, lval, c)) != 0)
			return token;
	}
}

/* Keeps the start of a token's text for a syntax error message. */
static void
remember_text(struct parser *p, const char *text)
{
	size_t len = strlen(text);

	if (len >= sizeof(p->last_text))
		len = sizeof(p->last_text) - 1;
	memcpy(p->last_text, text, len);
	p->last_text[len] = '\0';
}

static int
yylex(YYSTYPE *lval, YYLTYPE *lloc, struct parser *p)
{
	int token = lex_token(p, lval, lloc);
	char c[2] = { (char)token, '\0' };

	p->prev_kind = p->last_kind;
	p->prev_starts = p->last_starts;
	memcpy(p->prev_text, p->last_text, sizeof(p->prev_text));
	p->last_starts = p->prev_kind == 0 || p->prev_kind == '\n' || p->prev_kind == '{' ||
			 p->prev_kind == ',';
	p->last_kind = token;
	if (token == STRING || token == WORD)
		remember_text(p, lval->string);
	else if (token == NUMBER)
		remember_text(p, lval->number.text);
	else if (token > 0 && token < 256)
		remember_text(p, c);
	else
		remember_text(p, p->token);
	return token;
}

/* Reads a whole file onto the input stack. */
static int
push_file(struct parser *p, const YYLTYPE *loc, const char *path)
{
	struct input *in;
	struct stat st;
	char *data = NULL, *name;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1)
		goto fail;
	for (int i = 0; i < p->ninputs; i++) {
		if (!p->inputs[i].is_macro && p->inputs[i].dev == st.st_dev &&
		    p->inputs[i].ino == st.st_ino) {
			close(fd);
			conf_error(p, loc, "include loop: %s is already being read", path);
			return -1;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if (st.st_size > MAX_FILE_SIZE) {
		errno = EFBIG;
		goto fail;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL)
		goto fail;
	while (len < (size_t)st.st_size &&
	       (n = read(fd, data + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	fd = -1;
	if ((name = strdup(path)) == NULL)
		goto fail;
	p->names[p->nnames++] = name;
	in = &p->inputs[p->ninputs++];
	memset(in, 0, sizeof(*in));
	in->data = data;
	in->len = len;
	in->name = name;
	in->line = 1;
	in->dev = st.st_dev;
	in->ino = st.st_ino;
	in->depth_at_start = p->brace_depth;
	in->at_line_start = true;
	return 0;
fail:
	if (loc != NULL)
		conf_error(p, loc, "include %s: %s", path, strerror(errno));
	else
		snprintf(p->err, p->errlen, "%s: %s", path, strerror(errno));
	p->failed = true;
	if (fd != -1)
		close(fd);
	free(data);
	return -1;
}

static int
count_files(struct parser *p)
{
	int n = 0;

	for (int i = 0; i < p->ninputs; i++)
		n += !p->inputs[i].is_macro;
	return n;
}

/* A relative path names a file next to the one that includes it. */
static int
include_file(struct parser *p, const YYLTYPE *loc, const char *path)
{
	const char *parent = current_file(p)->name, *slash = strrchr(parent, '/');
	char full[PATH_MAX];

	if (p->opts->no_includes) {
		conf_error(p, loc, "include is disabled here");
		return -1;
	}
	if (count_files(p) >= MAX_INCLUDE_DEPTH || p->ninputs >= MAX_INPUTS) {
		conf_error(p, loc, "include %s: includes nest more than %d deep", path,
			   MAX_INCLUDE_DEPTH);
		return -1;
	}
	if (p->nnames >= MAX_FILES) {
		conf_error(p, loc, "include %s: more than %d files", path, MAX_FILES);
		return -1;
	}
	if (path[0] == '/' || slash == NULL) {
		if (snprintf(full, sizeof(full), "%s", path) >= (int)sizeof(full))
			goto toolong;
	} else if (snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - parent), parent,
			    path) >= (int)sizeof(full)) {
		goto toolong;
	}
	return push_file(p, loc, full);
toolong:
	conf_error(p, loc, "include %s: path too long", path);
	return -1;
}

static bool
is_macro_name(const char *name)
{
	if (isdigit((unsigned char)name[0]))
		return false;
	for (const char *c = name; *c; c++)
		if (!is_macro_name_char((unsigned char)*c))
			return false;
	return true;
}

static int
add_macro(struct parser *p, const char *name, const char *value, bool from_command_line)
{
	struct macro *m = find_macro(p, name), *macros;
	char *copy;

	if (m != NULL) {
		if (m->from_command_line && !from_command_line)
			return 0; /* vmd -D wins over the file */
		if ((copy = strdup(value)) == NULL)
			return -1;
		free(m->value);
		m->value = copy;
		return 0;
	}
	if ((macros = reallocarray(p->macros, p->nmacros + 1, sizeof(*macros))) == NULL)
		return -1;
	p->macros = macros;
	m = &p->macros[p->nmacros];
	m->name = strdup(name);
	m->value = strdup(value);
	m->from_command_line = from_command_line;
	if (m->name == NULL || m->value == NULL) {
		free(m->name);
		free(m->value);
		return -1;
	}
	p->nmacros++;
	return 0;
}

static int
define_macro(struct parser *p, const YYLTYPE *loc, const char *name, const char *value)
{
	if (!is_macro_name(name)) {
		conf_error(p, loc,
			   "macro name \"%s\" has a character other than letters, digits "
			   "and '_'",
			   name);
		return -1;
	}
	if (add_macro(p, name, value, false) == -1) {
		conf_error(p, loc, "out of memory");
		return -1;
	}
	return 0;
}

static int
set_owner(struct parser *p, const YYLTYPE *loc, const char *text, struct vm_owner *owner)
{
	return check(p, loc, vm_parse_owner(text, owner, SETTER_ERR));
}

/* Finds or makes the limit entry of a user (NULL: the default). */
static int
begin_user_limit(struct parser *p, const YYLTYPE *loc, const char *user)
{
	struct vmd_globals *g = &p->conf.globals;
	struct vm_owner owner;

	if (user == NULL) {
		p->limit = &g->user_limit;
		return 0;
	}
	if (check(p, loc, vm_parse_owner(user, &owner, SETTER_ERR)) == -1)
		return -1;
	if (owner.uid == VM_ID_NONE || owner.gid != VM_ID_NONE) {
		conf_error(p, loc, "limit user \"%s\" is not a user", user);
		return -1;
	}
	if (owner.uid == 0) {
		conf_error(p, loc, "limit user \"%s\": root is never limited", user);
		return -1;
	}
	for (uint32_t i = 0; i < g->nuser_limits; i++) {
		if (g->user_limits[i].uid == owner.uid) {
			p->limit = &g->user_limits[i];
			return 0;
		}
	}
	if (g->nuser_limits == VMD_MAX_USER_LIMITS) {
		conf_error(p, loc, "more than %d users with a limit of their own",
			   VMD_MAX_USER_LIMITS);
		return -1;
	}
	p->limit = &g->user_limits[g->nuser_limits++];
	*p->limit = (struct vmd_user_limit){ .uid = owner.uid };
	return 0;
}

static int
set_user_limit(struct parser *p, const YYLTYPE *loc, uint32_t item, long long value,
	       const char *text)
{
	return check(p, loc, vm_set_user_limit(p->limit, item, value, text, SETTER_ERR));
}

static int
set_stagger(struct parser *p, const YYLTYPE *loc, long long parallel, long long delay)
{
	struct vmd_globals *g = &p->conf.globals;

	if (parallel < 1 || parallel > VMD_STAGGER_MAX_PARALLEL) {
		conf_error(p, loc, "parallel %lld is out of range (1 to %d)", parallel,
			   VMD_STAGGER_MAX_PARALLEL);
		return -1;
	}
	if (delay < 0 || delay > VMD_STAGGER_MAX_DELAY) {
		conf_error(p, loc, "delay %lld is out of range (0 to %d seconds)", delay,
			   VMD_STAGGER_MAX_DELAY);
		return -1;
	}
	g->stagger_parallel = (uint32_t)parallel;
	g->stagger_delay = (uint32_t)delay;
	g->set |= VMD_SET_STAGGER;
	return 0;
}

static int
set_once(struct parser *p, const YYLTYPE *loc, uint32_t bit, const char *what)
{
	if (p->vm->set & bit) {
		conf_error(p, loc, "vm \"%s\": %s is set twice", p->vm->name, what);
		return -1;
	}
	return 0;
}

static int
begin_switch(struct parser *p, const YYLTYPE *loc, const char *name)
{
	if (check(p, loc, vm_check_name("switch", name, SETTER_ERR)) == -1)
		return -1;
	if (config_find_switch(&p->conf, name) != NULL) {
		conf_error(p, loc, "switch \"%s\" is defined twice", name);
		return -1;
	}
	vm_switch_init(&p->sw, name);
	return 0;
}

static int
end_switch(struct parser *p, const YYLTYPE *loc)
{
	if (config_add_switch(&p->conf, &p->sw) == -1) {
		conf_error(p, loc, "more than %d switches", VMD_MAX_SWITCHES);
		return -1;
	}
	return 0;
}

/* A switch must be declared before an interface names it. */
static int
nic_switch(struct parser *p, const YYLTYPE *loc, const char *name)
{
	if (config_find_switch(&p->conf, name) == NULL) {
		conf_error(p, loc, "unknown switch \"%s\"", name);
		return -1;
	}
	snprintf(p->nic.switch_name, sizeof(p->nic.switch_name), "%s", name);
	return 0;
}

static int
nic_lladdr(struct parser *p, const YYLTYPE *loc, const char *mac, bool locked)
{
	if (locked)
		p->nic.flags |= VM_NIC_LOCKED;
	if (mac == NULL)
		return 0;
	if (check(p, loc, vm_parse_lladdr(mac, p->nic.lladdr, SETTER_ERR)) == -1)
		return -1;
	p->nic.flags |= VM_NIC_LLADDR;
	return 0;
}

/* name_loc and name: the new VM; tmpl_name, if any: the template it instantiates. */
static int
begin_vm(struct parser *p, const YYLTYPE *name_loc, const char *name,
	 const YYLTYPE *tmpl_loc, const char *tmpl_name)
{
	if (check(p, name_loc, vm_check_name("vm", name, SETTER_ERR)) == -1)
		return -1;
	if (config_find_vm(&p->conf, name) != NULL) {
		conf_error(p, name_loc, "vm \"%s\" is defined twice", name);
		return -1;
	}
	if (p->conf.nvms >= VMD_MAX_VMS) {
		conf_error(p, name_loc, "more than %d VMs", VMD_MAX_VMS);
		return -1;
	}
	p->template = NULL;
	if (tmpl_name != NULL &&
	    (p->template = config_find_vm(&p->conf, tmpl_name)) == NULL) {
		conf_error(p, tmpl_loc, "unknown template \"%s\"", tmpl_name);
		return -1;
	}
	if (p->vm == NULL && (p->vm = malloc(sizeof(*p->vm))) == NULL) {
		conf_error(p, name_loc, "out of memory");
		return -1;
	}
	vm_params_init(p->vm, name);
	return 0;
}

static int
end_vm(struct parser *p, const YYLTYPE *loc)
{
	vm_finish_nics(p->vm);
	if (p->template != NULL &&
	    check(p, loc, vm_instantiate(p->template, p->vm, SETTER_ERR)) == -1)
		return -1;
	if ((p->vm->allow & VM_INSTANCE_OWNER_GROUP) && p->vm->owner.gid == VM_ID_NONE) {
		conf_error(p, loc, "vm \"%s\": instance owner group, but the VM has no owner group",
			   p->vm->name);
		return -1;
	}
	if (config_add_vm(&p->conf, p->vm) == -1) {
		conf_error(p, loc, "out of memory");
		return -1;
	}
	p->template = NULL;
	return 0;
}

static void
parser_free(struct parser *p)
{
	for (int i = 0; i < p->ninputs; i++)
		free(p->inputs[i].data);
	for (size_t i = 0; i < p->nmacros; i++) {
		free(p->macros[i].name);
		free(p->macros[i].value);
	}
	free(p->macros);
	for (size_t i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p->names);
	free(p->vm);
}

/* Sets up p with the -D macros; the caller pushes the first input. */
static int
parser_init(struct parser *p, const struct config_options *opts, char *err,
	    size_t errlen)
{
	static const struct config_options none;

	memset(p, 0, sizeof(*p));
	config_init(&p->conf);
	p->opts = opts != NULL ? opts : &none;
	p->err = err;
	p->errlen = errlen;
	if ((p->names = calloc(MAX_FILES, sizeof(*p->names))) == NULL)
		goto nomem;
	for (size_t i = 0; i < p->opts->ndefines; i++) {
		const char *d = p->opts->defines[i], *eq;
		char name[128];

		if (config_check_define(d, err, errlen) == -1)
			return -1;
		eq = strchr(d, '=');
		if ((size_t)(eq - d) >= sizeof(name)) {
			snprintf(err, errlen, "-D %s: macro name is too long", d);
			return -1;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - d), d);
		if (add_macro(p, name, eq + 1, true) == -1)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Runs the parser over the input stack; on success hands the result to conf. */
static int
parser_run(struct parser *p, struct vmd_config *conf)
{
	int r = yyparse(p);

	if (r != 0 && !p->failed)
		conf_error(p, &(YYLTYPE){ current_file(p)->name, p->char_line },
			   "out of memory");
	if (r != 0 || p->failed) {
		config_free(&p->conf);
		parser_free(p);
		return -1;
	}
	*conf = p->conf;
	parser_free(p);
	return 0;
}

int
config_parse_file(struct vmd_config *conf, const char *path,
		  const struct config_options *opts, char *err, size_t errlen)
{
	struct parser *p;
	int r = -1;

	config_init(conf);
	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (parser_init(p, opts, err, errlen) == 0 && push_file(p, NULL, path) == 0)
		r = parser_run(p, conf);
	else
		parser_free(p);
	free(p);
	return r;
}

int
config_parse_buffer(struct vmd_config *conf, const char *name, const char *buf,
		    size_t len, const struct config_options *opts, char *err,
		    size_t errlen)
{
	struct parser *p;
	struct input *in;
	int r = -1;

	config_init(conf);
	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (parser_init(p, opts, err, errlen) == -1)
		goto out;
	in = &p->inputs[p->ninputs++];
	in->data = malloc(len + 1);
	p->names[p->nnames] = strdup(name);
	if (in->data == NULL || p->names[p->nnames] == NULL) {
		snprintf(err, errlen, "out of memory");
		p->nnames++;
		goto out;
	}
	memcpy(in->data, buf, len);
	in->len = len;
	in->name = p->names[p->nnames++];
	in->line = 1;
	in->at_line_start = true;
	in->dev = (dev_t)-1;
	in->ino = (ino_t)-1;
	r = parser_run(p, conf);
	free(p);
	return r;
out:
	parser_free(p);
	free(p);
	return r;
}
